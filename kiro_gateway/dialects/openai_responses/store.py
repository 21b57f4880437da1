"""Recent responses, so a request can continue one with `previous_response_id`.

Bounded (LRU by count and by bytes, plus a time-to-live) and in memory: OpenAI keeps stored
responses for days, a gateway cannot; clients that send `store: false` (Codex) resend the full
history instead and never touch this. Each entry keeps the exchange up to and including that
response's output as Responses input items, serialised: one bytes object instead of thousands of
Python objects, which the garbage collector would otherwise walk on every full collection.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


__all__ = ["ResponseStore", "Stored"]


@dataclass(slots=True)
class Stored:
    expires: float
    items: bytes  # a JSON array of input items: the whole exchange, this response's output last
    response: bytes  # the Response object as returned (JSON), for GET /v1/responses/{id}

    @property
    def size(self) -> int:
        return len(self.items) + len(self.response)


class ResponseStore:
    def __init__(self, max_entries: int = 1000, ttl: float = 6 * 3600.0,
                 max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.bytes = 0
        self._items: OrderedDict[str, Stored] = OrderedDict()

    def put(self, response_id: str, items: bytes, response: bytes) -> None:
        old = self._items.pop(response_id, None)
        if old is not None:
            self.bytes -= old.size
        entry = Stored(time.monotonic() + self.ttl, items, response)
        self._items[response_id] = entry
        self.bytes += entry.size
        while len(self._items) > self.max_entries or (self.bytes > self.max_bytes and len(self._items) > 1):
            _, gone = self._items.popitem(last=False)
            self.bytes -= gone.size

    def get(self, response_id: str) -> Stored | None:
        item = self._items.get(response_id)
        if item is None:
            return None
        if item.expires < time.monotonic():
            del self._items[response_id]
            self.bytes -= item.size
            return None
        self._items.move_to_end(response_id)
        return item

    def delete(self, response_id: str) -> bool:
        item = self._items.pop(response_id, None)
        if item is not None:
            self.bytes -= item.size
        return item is not None

    def __len__(self) -> int:
        return len(self._items)
