"""Two HTTP/1.1 keep-alive clients for the load generator, with one interface.

- `raw` (default): an asyncio Protocol per connection, the response parsed by httptools (the C
  parser uvicorn uses; a dependency of the gateway anyway). The request bytes (head + body) are
  built once per cell, so a request costs one transport.write and the parser callbacks.
- `aiohttp`: aiohttp's ClientSession, reading the body with `iter_any()`.

Both record, per request: status, the complete body, the time of the first body byte and the
time the body completed (taken in the protocol callbacks, not when the awaiting task resumes).
`python -m bench --compare-clients` measures what each costs the machine on the floor cell.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httptools

__all__ = ["Response", "RawClient", "AiohttpClient", "make_client", "request_head"]

perf = time.perf_counter


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    t_first: float  # first body byte (perf_counter)
    t_end: float  # body complete


def request_head(method: str, host: str, path: str, headers: dict[str, str], body_len: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}", f"content-length: {body_len}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Conn(asyncio.Protocol):
    __slots__ = ("loop", "transport", "parser", "fut", "chunks", "t_first", "status", "closed", "keep")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = None
        self.fut: asyncio.Future | None = None
        self.chunks: list[bytes] = []
        self.t_first = 0.0
        self.status = 0
        self.closed = False
        self.keep = True

    # asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            return  # nothing asked: ignore (never happens with well-behaved servers)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(ConnectionError(f"bad HTTP response: {e}"))
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._fail(ConnectionError(f"connection lost: {exc or 'closed by peer'}"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.chunks:
            self.t_first = perf()
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        fut, self.fut = self.fut, None
        self.parser = None
        if fut is not None and not fut.done():
            chunks = self.chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            t = perf()
            fut.set_result(Response(self.status, body, self.t_first or t, t))

    def _fail(self, exc: Exception) -> None:
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def send(self, data: bytes) -> asyncio.Future:
        self.parser = httptools.HttpResponseParser(self)
        self.chunks = []
        self.t_first = 0.0
        self.status = 0
        self.fut = fut = self.loop.create_future()
        self.transport.write(data)
        return fut


class RawClient:
    name = "raw"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: _Conn(loop), self.host, self.port)
        return proto

    def prepare(self, path: str, headers: dict[str, str], body: bytes) -> bytes:
        return request_head("POST", f"{self.host}:{self.port}", path, headers, len(body)) + body

    async def request(self, conn: _Conn | None, prepared: bytes) -> tuple[_Conn | None, Response]:
        """Send on `conn` (reconnecting if needed); returns the connection to reuse (or None)."""
        if conn is None or conn.closed:
            conn = await self.connect()
        try:
            resp = await conn.send(prepared)
        except BaseException:
            if conn.transport is not None:
                conn.transport.abort()
            raise
        if not conn.keep:
            conn.transport.close()
            conn = None
        return conn, resp

    def close_conn(self, conn: _Conn | None) -> None:
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def close(self) -> None:
        pass


class AiohttpClient:
    name = "aiohttp"

    def __init__(self, host: str, port: int) -> None:
        import aiohttp

        self.base = f"http://{host}:{port}"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type", "Accept", "Accept-Encoding"))

    def prepare(self, path: str, headers: dict[str, str], body: bytes):
        return (self.base + path, headers, body)

    async def request(self, conn, prepared) -> tuple[None, Response]:
        url, headers, body = prepared
        async with self.session.post(url, data=body, headers=headers) as resp:
            chunks = []
            t_first = 0.0
            async for chunk in resp.content.iter_any():
                if not chunks:
                    t_first = perf()
                chunks.append(chunk)
            t = perf()
            return None, Response(resp.status, b"".join(chunks), t_first or t, t)

    def close_conn(self, conn) -> None:
        pass

    async def close(self) -> None:
        await self.session.close()


def make_client(kind: str, host: str, port: int):
    if kind == "raw":
        return RawClient(host, port)
    if kind == "aiohttp":
        return AiohttpClient(host, port)
    raise ValueError(f"unknown client {kind!r}")
