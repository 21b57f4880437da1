"""HTTP helpers every route uses: a fast JSON response, body reading, errors in a dialect's shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..core.conversation import GatewayError
from ..util.jsondepth import MAX_DEPTH, too_deep



class ErrorShape(Protocol):
    """Anything that words an error its own way (each dialect does)."""

    def error(self, err: GatewayError) -> tuple[int, bytes]: ...

__all__ = ["JSONResponse", "StreamedReply", "json_body", "raw_body", "error_response", "ErrorShape", "MAX_BODY"]

MAX_BODY = 32 * 1024 * 1024


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


class StreamedReply(Response):
    """A streamed 200 reply: each chunk goes to the server as it comes, or, when chunks come
    faster than `window` seconds apart, several in one write.

    Starlette's StreamingResponse does the same inside an AnyIO task group with cancel scopes,
    which costs more per request than rendering the whole reply. Here one plain task waits for
    the client to leave and then cancels the stream, so that Kiro's stream is closed at once
    (not when the next chunk finds nobody to take it) and the credential's slot comes back.

    Writes are what a chunk costs most (a system call each): a chunk that comes less than
    `window` after the last write waits, joined with whatever else comes, for one write at the
    end of the window. The bytes are the same and in the same order; the first chunk, and any
    that comes after a quiet `window`, goes at once. Hand-written rather than a buffered writer
    because only the stream knows when its next chunk is due (a timer per window, not per chunk).
    """

    def __init__(self, chunks: AsyncIterator[bytes], media_type: str, headers: Mapping[str, str],
                 window: float = 0.0) -> None:
        # A Response by type (routes return it), but none of Response's rendering: no super().__init__.
        self.status_code = 200
        self.background = None
        self.chunks = chunks
        self.window = window
        self.raw_headers = [(b"content-type", media_type.encode())]
        self.raw_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope, receive, send) -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        gone = False

        async def listen() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            task.cancel()

        listener = loop.create_task(listen())
        writer = _Coalescer(send, loop, self.window) if self.window > 0 else None
        try:
            try:  # every await of this reply is in here, so a cancel from `listen` lands here
                await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                if writer is None:
                    async for chunk in self.chunks:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                else:
                    async for chunk in self.chunks:
                        await writer.write(chunk)
                    await writer.close()
            finally:
                listener.cancel()
                if writer is not None:
                    writer.abandon()
        except asyncio.CancelledError:
            if not gone:
                raise
            task.uncancel()  # the client left: nothing more to do than close the stream
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                await aclose()


class _Coalescer:
    """StreamedReply's writes, at most one per `window` while chunks keep coming."""

    __slots__ = ("send", "loop", "window", "pending", "last", "timer", "flushing", "failed")

    def __init__(self, send: Any, loop: asyncio.AbstractEventLoop, window: float) -> None:
        self.send = send
        self.loop = loop
        self.window = window
        self.pending: list[bytes] = []
        self.last = -window  # the time of the last write
        self.timer: asyncio.TimerHandle | None = None
        self.flushing: asyncio.Task[None] | None = None  # a write of the pending chunks, under way
        self.failed: BaseException | None = None  # what a timed write raised, for the stream's task

    async def write(self, chunk: bytes) -> None:
        if self.failed is not None:
            raise self.failed
        now = self.loop.time()
        if not self.pending and self.flushing is None and now - self.last >= self.window:
            self.last = now
            await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
            return
        self.pending.append(chunk)
        if self.timer is None and self.flushing is None:
            self.timer = self.loop.call_at(self.last + self.window, self._due)

    def _due(self) -> None:
        self.timer = None
        self.flushing = self.loop.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self.pending:  # what came while a slow client held the write up goes too
                data = b"".join(self.pending)
                self.pending.clear()
                self.last = self.loop.time()
                await self.send({"type": "http.response.body", "body": data, "more_body": True})
        except Exception as e:  # noqa: BLE001 - raised again in the stream's own task
            self.failed = e
        finally:
            self.flushing = None

    async def close(self) -> None:
        """The stream ended: whatever waits goes out with the end of the body."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.flushing is not None:
            await self.flushing
        if self.failed is not None:
            raise self.failed
        data = b"".join(self.pending)
        self.pending.clear()
        await self.send({"type": "http.response.body", "body": data, "more_body": False})

    def abandon(self) -> None:
        """The reply is over (or the client left): no write may follow."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.flushing is not None:
            self.flushing.cancel()


async def json_body(request: Request) -> Any:
    """The request body as JSON, or a 400/413 GatewayError saying what is wrong with it. The body is
    counted while it arrives: one past the limit stops the reading (a chunked upload never sits
    whole in memory) and the connection is closed after the answer."""
    too_large = GatewayError("invalid_request", f"Request body too large (limit {MAX_BODY} bytes).", 413, close=True)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise too_large
    raw = request.__dict__.get("_body")
    if raw is None:
        parts, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise too_large
            parts.append(chunk)
        raw = request._body = b"".join(parts)  # where Starlette keeps it: `raw_body`, the request log
    if not raw:
        raise GatewayError("invalid_request", "The request body is empty; a JSON object is required.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise GatewayError("invalid_request", f"The request body is not valid JSON: {e}") from e
    if too_deep(value):
        raise GatewayError("invalid_request", f"The request body nests deeper than {MAX_DEPTH} levels.")
    return value


def raw_body(request: Request) -> bytes | None:
    """The bytes `json_body` parsed, while Starlette still caches them on the request."""
    return request.__dict__.get("_body")


def error_response(shape: ErrorShape, err: GatewayError) -> Response:
    """The error as a JSON response in `shape`'s wording, with Retry-After and Connection as needed."""
    status, body = shape.error(err)
    headers = {}
    if err.retry_after:
        headers["retry-after"] = str(int(err.retry_after + 0.999))
    if err.close or status >= 500 and err.kind == "internal":
        headers["connection"] = "close"  # the connection is not reused: say so, the client opens a new one
    return JSONResponse(body, status_code=status, headers=headers)
