"""Tiny outbound proxies for tests, on 127.0.0.1 in their own thread: an HTTP proxy (absolute-URI
forwarding and CONNECT, Basic auth) and a SOCKS5 proxy (username/password auth). Each records the
HTTP requests it carried, so a test can tell which traffic went through it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import struct
import threading
from urllib.parse import urlsplit

_REQUEST_LINE = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, sink: bytearray | None = None) -> None:
    try:
        while data := await src.read(65536):
            if sink is not None:
                sink.extend(data)
            dst.write(data)
            await dst.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            dst.close()


class _ThreadServer:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    def start(self):
        self.thread.start()

        async def open_():
            return await asyncio.start_server(self._guarded, "127.0.0.1", 0)

        self.server = asyncio.run_coroutine_threadsafe(open_(), self.loop).result(5)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _guarded(self, reader, writer) -> None:
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(self, reader, writer) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:
        async def close_():
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class HttpProxy(_ThreadServer):
    """Forwards absolute-URI requests (one per connection) and tunnels CONNECT."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        self.expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.seen: list[dict] = []  # {"method", "path", "target", "authorized", "headers"}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def carried(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.seen if r["authorized"]]

    async def handle(self, reader, writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
        lower = {k.lower(): v for k, v in headers}
        ok = lower.get("proxy-authorization") == self.expected
        path = target if method == "CONNECT" else (urlsplit(target).path or "/")
        self.seen.append({"method": method, "path": path, "target": target, "authorized": ok, "headers": lower})
        if not ok:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up_r, up_w = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
            return
        body = await reader.readexactly(int(lower.get("content-length", "0")))
        url = urlsplit(target)
        up_r, up_w = await asyncio.open_connection(url.hostname, url.port or 80)
        target_path = url.path + (f"?{url.query}" if url.query else "")
        keep = [(k, v) for k, v in headers if k.lower() not in ("proxy-authorization", "proxy-connection",
                                                                 "connection", "keep-alive")]
        out = f"{method} {target_path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in keep)
        up_w.write(out.encode("latin-1") + b"Connection: close\r\n\r\n" + body)
        await up_w.drain()
        await _pipe(up_r, writer)  # until the origin closes: one request per connection


class Socks5Proxy(_ThreadServer):
    """RFC 1928 CONNECT with RFC 1929 username/password authentication only."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        self.username, self.password = username.encode(), password.encode()
        self.auth_failures = 0
        self.connections = 0
        self._streams: list[bytearray] = []  # client → origin bytes, per connection

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"

    def carried(self) -> list[tuple[str, str]]:
        return [(m.group(1).decode(), m.group(2).decode().split("?")[0])
                for s in list(self._streams) for m in _REQUEST_LINE.finditer(bytes(s))]

    async def handle(self, reader, writer) -> None:
        ver, n = await reader.readexactly(2)
        methods = await reader.readexactly(n)
        if ver != 5 or 2 not in methods:
            writer.write(b"\x05\xff")
            await writer.drain()
            return
        writer.write(b"\x05\x02")
        await writer.drain()
        await reader.readexactly(1)
        user = await reader.readexactly((await reader.readexactly(1))[0])
        pw = await reader.readexactly((await reader.readexactly(1))[0])
        if (user, pw) != (self.username, self.password):
            self.auth_failures += 1
            writer.write(b"\x01\x01")
            await writer.drain()
            return
        writer.write(b"\x01\x00")
        _, cmd, _, atyp = await reader.readexactly(4)
        if atyp == 1:
            host = socket.inet_ntoa(await reader.readexactly(4))
        elif atyp == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if cmd != 1:
            writer.write(b"\x05\x07\x00\x01" + b"\x00" * 6)
            await writer.drain()
            return
        up_r, up_w = await asyncio.open_connection(host, port)
        self.connections += 1
        writer.write(b"\x05\x00\x00\x01" + b"\x00" * 6)
        await writer.drain()
        sink = bytearray()
        self._streams.append(sink)
        await asyncio.gather(_pipe(reader, up_w, sink), _pipe(up_r, writer))
