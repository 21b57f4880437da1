"""Recent responses, so a request can continue one with `previous_response_id`.

Bounded (LRU by count, plus a time-to-live) and in memory: OpenAI keeps stored responses for
days, a gateway cannot; clients that send `store: false` (Codex) resend the full history instead
and never touch this. Each entry keeps the neutral messages of the whole exchange up to and
including that response's output; chained entries share their Message objects, so a long chain
costs little more than its newest turn.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from ...conversation import Message

__all__ = ["ResponseStore", "Stored"]


@dataclass(slots=True)
class Stored:
    expires: float
    messages: list[Message]
    response: dict  # the Response object as returned, for GET /v1/responses/{id}


class ResponseStore:
    def __init__(self, max_entries: int = 1000, ttl: float = 6 * 3600.0) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._items: OrderedDict[str, Stored] = OrderedDict()

    def put(self, response_id: str, messages: list[Message], response: dict) -> None:
        self._items[response_id] = Stored(time.monotonic() + self.ttl, messages, response)
        self._items.move_to_end(response_id)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def get(self, response_id: str) -> Stored | None:
        item = self._items.get(response_id)
        if item is None:
            return None
        if item.expires < time.monotonic():
            del self._items[response_id]
            return None
        self._items.move_to_end(response_id)
        return item

    def delete(self, response_id: str) -> bool:
        return self._items.pop(response_id, None) is not None

    def __len__(self) -> int:
        return len(self._items)
