"""aiohttp vs httpx as the gateway's upstream client: CPU per streamed reply, in this process.

    python -m bench.upstream_clients [--chunks 100] [--conc 50] [--seconds 4] [--delay-ms 0]

Starts the fake Kiro, then for each client posts the headline Kiro body (80 KB) and reads the
event-stream reply to the end as the gateway does (every read fed to the frame decoder), C at a
time, rounds interleaved; reports this process's CPU per request and req/s. `--delay-ms` paces the
fake's frames (one frame a read, as Kiro sends them): what reading alone costs per frame, the floor
under the gateway's own per-frame cost. httpx must be importable (it is a test dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from typing import cast

from bench import procs
from bench.bodies import anthropic_body
from bench.dialects import TARGETS
from kiro_gateway.kiro.eventstream import EventStreamDecoder


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _aiohttp(url: str, body: bytes, headers: dict, conc: int, seconds: float) -> tuple[int, float]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def one() -> None:
            async with s.post(url, data=body, headers=headers) as r:
                dec = EventStreamDecoder()
                while chunk := await r.content.readany():
                    dec.feed(chunk)
        return await _drive(one, conc, seconds)


async def _httpx(url: str, body: bytes, headers: dict, conc: int, seconds: float) -> tuple[int, float]:
    import httpx

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=conc),
                                 timeout=30) as c:
        async def one() -> None:
            async with c.stream("POST", url, content=body, headers=headers) as r:
                dec = EventStreamDecoder()
                async for chunk in r.aiter_raw():
                    dec.feed(chunk)
        return await _drive(one, conc, seconds)


async def _protocol(url: str, body: bytes, headers: dict, conc: int, seconds: float) -> tuple[int, float]:
    """A floor, not a candidate: a bare asyncio protocol that receives the reply and does nothing
    with it (no HTTP parsing, no decoding; one request a connection, read to EOF). What is left is
    what any Python reader pays per read: the loop's wake-up, the recv, one callback."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\ncontent-length: {len(body)}\r\n"
               f"connection: close\r\n{head}\r\n").encode() + body
    loop = asyncio.get_running_loop()

    class Reader(asyncio.Protocol):
        def __init__(self) -> None:
            self.done = loop.create_future()
            self.reads = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            cast(asyncio.Transport, transport).write(request)  # uvloop's transport subclasses none of asyncio's

        def data_received(self, data: bytes) -> None:
            self.reads += 1

        def connection_lost(self, exc: Exception | None) -> None:
            self.done.set_result(None)

    async def one() -> None:
        _, proto = await loop.create_connection(Reader, parts.hostname or "127.0.0.1", parts.port or 80)
        await proto.done
    return await _drive(one, conc, seconds)


async def _drive(one, conc: int, seconds: float) -> tuple[int, float]:
    await asyncio.gather(*(one() for _ in range(conc)))  # warm: connections opened
    done = 0
    end = time.perf_counter() + seconds
    c0 = _cpu()

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < end:
            await one()
            done += 1
    await asyncio.gather(*(worker() for _ in range(conc)))
    return done, _cpu() - c0


async def main_async(a) -> None:
    work = procs.workdir()
    port = procs.free_port()
    fake = procs.start_fake(work, port, chunks=a.chunks, chunk_delay=a.delay_ms / 1e3)
    try:
        t = TARGETS["direct"]
        src = anthropic_body("80k")
        body = t.body(src, True)
        url = f"http://127.0.0.1:{port}{t.path(True, src)}"
        headers = dict(t.headers(procs.API_KEY))
        for rnd in range(a.rounds):
            for name, fn in (("aiohttp", _aiohttp), ("httpx", _httpx), ("protocol", _protocol)):
                t0 = time.perf_counter()
                n, cpu = await fn(url, body, headers, a.conc, a.seconds)
                wall = time.perf_counter() - t0
                print(f"round {rnd + 1} {name:8s} {n / wall:7.0f} req/s  client CPU {cpu * 1e3 / n:.3f} ms/request "
                      f"({a.chunks} frames, {a.delay_ms:g} ms apart, C={a.conc})", flush=True)
    finally:
        fake.stop()
        procs.remove_workdir(work)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--chunks", type=int, default=100)
    p.add_argument("--conc", type=int, default=50)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--delay-ms", type=float, default=0.0, help="ms between the fake's frames (0: as fast as it can)")
    a = p.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(a))


if __name__ == "__main__":
    main()
