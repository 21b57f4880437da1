"""Recent responses, so a request can continue one with `previous_response_id`.

A stored Response belongs to the client that made it (its client key's id, or the gateway's own
key): another client neither reads, continues nor deletes it — to it the id does not exist.

In memory, bounded (LRU by count and by bytes, plus a time-to-live), in front of the state store
(`backing`, when given): every stored Response is also written there, so it survives a restart
and is seen by every process of a team. A record there holds only its own request and output and
its parent's id; a Response not in memory is rebuilt by walking its parents (and each put keeps
its ancestors as long as itself). Clients that send `store: false` (Codex) resend the full history
instead and never touch this.

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

import asyncio
import time
from collections import OrderedDict
from typing import Protocol

import orjson

from ..jsonbytes import kept
from ...util.tasks import failed

__all__ = ["ResponseStore", "Stored", "Backing", "as_items"]

_MAX_CHAIN = 10_000  # parents walked to rebuild one Response (a guard against a loop in the store)


class Backing(Protocol):
    """Where stored Responses outlive the process (the state store implements it)."""

    async def put_response(self, response_id: str, owner: str, data: bytes, expires: float) -> None: ...

    async def get_response(self, response_id: str) -> tuple[str, bytes] | None: ...

    async def delete_response(self, response_id: str) -> bool: ...

    async def touch_responses(self, response_ids: list[str], expires: float) -> None: ...


def as_items(value: object) -> object:
    """`input` as a list of items: a bare string is one user message (what the API does)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}] if value else []
    return value


def _join(*arrays: bytes) -> bytes:
    inner = [a[1:-1] for a in arrays if a != b"[]"]
    return b"[" + b",".join(inner) + b"]"


class Stored:
    __slots__ = ("expires", "size", "owner", "chain", "_prior", "_request", "_output", "_response", "_items")

    def __init__(self, expires: float, prior: bytes, request: bytes, output: bytes, response: bytes,
                 owner: str = "", chain: tuple[str, ...] = ()) -> None:
        self.expires = expires
        self.owner = owner
        self.chain = chain  # the ids of the Responses this one continues, parent first
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
                 max_bytes: int = 64 * 1024 * 1024, backing: Backing | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.bytes = 0
        self.backing = backing
        self._items: OrderedDict[str, Stored] = OrderedDict()
        self._saving: set[asyncio.Task] = set()

    def put(self, response_id: str, prior: bytes, request: bytes, output: bytes, response: bytes,
            owner: str = "", parent: str | None = None) -> None:
        """Keep a response: `prior` is the items before this request (a JSON array), `request` the
        request body (a JSON object with its `input`, `instructions` and `tools`), `output` this
        response's items, `response` the Response object with empty `instructions` and `tools`;
        `parent` the Response it continues (`previous_response_id`)."""
        chain: tuple[str, ...] = ()
        if parent is not None:
            above = self._items.get(parent)
            chain = (parent, *above.chain) if above is not None else (parent,)
        self._keep(response_id, Stored(time.monotonic() + self.ttl, prior, request, output, response, owner, chain))
        if self.backing is not None:
            record = orjson.dumps({"parent": parent, "request": request.decode(), "output": output.decode(),
                                   "response": response.decode()})
            self._spawn(self._save(response_id, owner, record, list(chain)))

    def _keep(self, response_id: str, entry: Stored) -> None:
        old = self._items.pop(response_id, None)
        if old is not None:
            self.bytes -= old.size
        self._items[response_id] = entry
        self.bytes += entry.size
        while len(self._items) > self.max_entries or (self.bytes > self.max_bytes and len(self._items) > 1):
            _, gone = self._items.popitem(last=False)
            self.bytes -= gone.size

    def get(self, response_id: str, owner: str = "") -> Stored | None:
        """The stored Response if it is in memory and `owner`'s (call `load` first to look further)."""
        item = self._items.get(response_id)
        if item is None:
            return None
        if item.expires < time.monotonic():
            del self._items[response_id]
            self.bytes -= item.size
            return None
        if item.owner != owner:
            return None
        self._items.move_to_end(response_id)
        return item

    async def load(self, response_id: str, owner: str = "") -> Stored | None:
        """`get`, reading the Response (and the ones it continues) from the backing on a miss.
        Raises what the backing raises when it cannot be reached."""
        if response_id in self._items or self.backing is None:
            return self.get(response_id, owner)
        found = await self.backing.get_response(response_id)
        if found is None or found[0] != owner:
            return None
        # Walk up to the first parent in memory (or the root), then rebuild downwards.
        path: list[tuple[str, dict]] = [(response_id, orjson.loads(found[1]))]
        while (parent := path[-1][1].get("parent")) is not None and parent not in self._items:
            if len(path) >= _MAX_CHAIN:
                return None
            up = await self.backing.get_response(parent)
            if up is None or up[0] != owner:
                return None  # an ancestor is gone: the exchange cannot be rebuilt
            path.append((parent, orjson.loads(up[1])))
        for rid, rec in reversed(path):
            parent = rec.get("parent")
            above = self._items.get(parent) if parent is not None else None
            if parent is not None and above is None:
                return None
            prior = above.items if above is not None else b"[]"
            chain = (parent, *above.chain) if above is not None and parent is not None else ()
            self._keep(rid, Stored(time.monotonic() + self.ttl, prior, rec["request"].encode(),
                                   rec["output"].encode(), rec["response"].encode(), owner, chain))
        return self.get(response_id, owner)

    async def delete(self, response_id: str, owner: str = "") -> bool:
        """Forget `owner`'s stored Response here and in the backing; False when it has none by that id."""
        if await self.load(response_id, owner) is None:
            return False
        item = self._items.pop(response_id, None)
        if item is not None:
            self.bytes -= item.size
        if self.backing is not None:
            await self.backing.delete_response(response_id)
        return True

    async def _save(self, response_id: str, owner: str, record: bytes, ancestors: list[str]) -> None:
        assert self.backing is not None
        expires = time.time() + self.ttl
        try:
            await self.backing.put_response(response_id, owner, record, expires)
            await self.backing.touch_responses(ancestors, expires)
        except Exception as e:  # noqa: BLE001 - kept in memory still; counted and logged once
            failed("responses.save", e)

    def _spawn(self, coro) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (a unit test of the parser): memory only
            coro.close()
            return
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    async def settle(self) -> None:
        """Wait for the writes under way (shutdown, tests)."""
        while self._saving:
            await asyncio.gather(*list(self._saving), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._items)
