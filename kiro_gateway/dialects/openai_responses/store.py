"""Recent responses, so a request can continue one with `previous_response_id`.

Bounded (LRU by count and by bytes, plus a time-to-live) and in memory: OpenAI keeps stored
responses for days, a gateway cannot; clients that send `store: false` (Codex) resend the full
history instead and never touch this.

An entry is the exchange up to and including that response's output, as Responses input items,
and the Response object. Storing costs the request path next to nothing: it keeps references to
the earlier items (the previous entry's own serialised items, shared), the request body exactly
as it arrived, this response's output items, and the Response without its echo of the request's
instructions and tools (often 50+ KB, and in the body already). The items are joined into one
JSON array only when a later request continues the response, the full Response only when read.
Bytes rather than parsed items: one object instead of thousands, which the garbage collector
would otherwise walk on every full collection.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import orjson

from ...jsonbytes import kept

__all__ = ["ResponseStore", "Stored", "as_items"]


def as_items(value: object) -> object:
    """`input` as a list of items: a bare string is one user message (what the API does)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}] if value else []
    return value


def _join(*arrays: bytes) -> bytes:
    inner = [a[1:-1] for a in arrays if a != b"[]"]
    return b"[" + b",".join(inner) + b"]"


class Stored:
    __slots__ = ("expires", "size", "_prior", "_request", "_output", "_response", "_items")

    def __init__(self, expires: float, prior: bytes, request: bytes, output: bytes, response: bytes) -> None:
        self.expires = expires
        self._prior = prior  # the items before this request (a JSON array), another entry's
        self._request = request  # the request body: its "input", "instructions" and "tools"
        self._output = kept(output)  # this response's output items (a JSON array)
        self._response = kept(response)  # the Response, "instructions" and "tools" empty
        self._items: bytes | None = None
        self.size = len(prior) + len(request) + len(output) + len(response)

    @property
    def items(self) -> bytes:
        """A JSON array of input items: the whole exchange, this response's output last."""
        if self._items is None:
            request_items = orjson.dumps(as_items(orjson.loads(self._request).get("input")))
            self._items = _join(self._prior, request_items, self._output)
            self._prior = self._output = b""
        return self._items

    @property
    def response(self) -> bytes:
        """The Response object as it was returned (JSON), for GET /v1/responses/{id}."""
        request = orjson.loads(self._request)
        response = orjson.loads(self._response)
        response["instructions"] = request.get("instructions")
        response["tools"] = request.get("tools") or []
        return orjson.dumps(response)


class ResponseStore:
    def __init__(self, max_entries: int = 1000, ttl: float = 6 * 3600.0,
                 max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.bytes = 0
        self._items: OrderedDict[str, Stored] = OrderedDict()

    def put(self, response_id: str, prior: bytes, request: bytes, output: bytes, response: bytes) -> None:
        """Keep a response: `prior` is the items before this request (a JSON array), `request` the
        request body (a JSON object with its `input`, `instructions` and `tools`), `output` this
        response's items, `response` the Response object with empty `instructions` and `tools`."""
        old = self._items.pop(response_id, None)
        if old is not None:
            self.bytes -= old.size
        entry = Stored(time.monotonic() + self.ttl, prior, request, output, response)
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
