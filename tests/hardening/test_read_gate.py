"""Back-pressure on reading requests (web/readgate.py), over real sockets.

A small app holds each request (read, not answered) until the test lets it go, served by uvicorn
through `GatedHttpToolsProtocol` on both event loops; then the gateway itself, whose model route
frees a request's bytes once Kiro's first events arrived.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kiro_gateway.web.readgate import RESERVATION_SECONDS, RESERVE, STATE_KEY, ReadGate, answered
from support import API_KEY, ServerThread, start_gateway

BODY = 60_000


class Held:
    """An app whose requests, once read, wait for `go(n)` before they count as answered."""

    def __init__(self, gate: ReadGate) -> None:
        self.gate = gate
        self.arrived: list[str] = []
        self.released: set[str] = set()

        async def hold(request: Request) -> PlainTextResponse:
            body = await request.body()
            n = request.headers["x-n"]
            self.arrived.append(n)
            while n not in self.released:
                await asyncio.sleep(0.005)
            answered(request)
            return PlainTextResponse(f"{n}:{len(body)}")

        @asynccontextmanager
        async def lifespan(app):
            yield {STATE_KEY: gate}

        self.app = Starlette(routes=[Route("/hold", hold, methods=["POST"])], lifespan=lifespan)

    def go(self, *names: str) -> None:
        self.released.update(names)


def until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def post(port: int, n: str, size: int = BODY, chunked: bool = False,
         conn: http.client.HTTPConnection | None = None) -> str:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    body = b"x" * size
    if chunked:
        conn.request("POST", "/hold", body=iter([body[: size // 2], body[size // 2:]]), headers={"x-n": n},
                     encode_chunked=True)
    else:
        conn.request("POST", "/hold", body=body, headers={"x-n": n})
    r = conn.getresponse()
    assert r.status == 200
    return r.read().decode()


def serve_held(loop: str, **config):
    gate = ReadGate(100_000)
    held = Held(gate)
    server = ServerThread(held.app, loop=loop, **config).start()
    pool = ThreadPoolExecutor(8)
    held.port = server.port  # type: ignore[attr-defined]
    held.submit = lambda *a, **kw: pool.submit(post, server.port, *a, **kw)  # type: ignore[attr-defined]
    yield held
    held.go(*map(str, range(20)), "k", "k2")
    pool.shutdown(wait=True)
    server.stop()


@pytest.fixture(params=["asyncio", "uvloop"])
def held(request):
    yield from serve_held(request.param)


@pytest.fixture
def held_short_keepalive():
    yield from serve_held("uvloop", timeout_keep_alive=1)


def test_requests_past_the_budget_wait_unread_and_are_read_first_come_first_served(held):
    gate = held.gate
    a = held.submit("a")
    until(lambda: held.arrived == ["a"], "a is read")
    b = held.submit("b")
    until(lambda: held.arrived == ["a", "b"], "b is read: 60 KB held, under the 100 KB budget")
    assert 2 * BODY < gate.held < 2 * BODY + 1000  # the bodies and their headers
    c = held.submit("c")
    until(lambda: gate.waiting == 1, "c waits: the gate is full")
    d = held.submit("d", chunked=True)  # no Content-Length: counted at a default size
    until(lambda: gate.waiting == 2, "d waits behind c")
    time.sleep(0.2)
    assert held.arrived == ["a", "b"]  # nothing of c or d was read past one byte
    held.go("a")
    assert a.result(5) == f"a:{BODY}"
    until(lambda: held.arrived == ["a", "b", "c"], "a answered: c is read, first")
    assert gate.waiting == 1  # c's 60 KB fill the room a freed: d still waits
    held.go("b")
    until(lambda: held.arrived == ["a", "b", "c", "d"], "b answered: d is read")
    held.go("c", "d")
    assert [f.result(5) for f in (b, c, d)] == [f"b:{BODY}", f"c:{BODY}", f"d:{BODY}"]
    until(lambda: gate.held == 0, "every request answered: nothing held")
    assert gate.waiting == 0 and gate.deferred == 2 and gate.longest_wait > 0.2


def test_an_idle_keep_alive_connection_holds_nothing_and_its_next_request_queues(held):
    gate = held.gate
    keep = http.client.HTTPConnection("127.0.0.1", held.port, timeout=20)
    held.go("k")
    assert post(held.port, "k", size=10, conn=keep) == "k:10"
    until(lambda: gate.held == 0, "the first request on the kept connection is answered")
    a, b = held.submit("a"), held.submit("b")
    until(lambda: len(held.arrived) == 3, "a and b are read")
    time.sleep(0.2)
    assert gate.waiting == 0  # the idle connection is not waiting, and holds nothing
    assert 2 * BODY < gate.held < 2 * BODY + 1000
    held.go("k2")
    k2 = ThreadPoolExecutor(1).submit(post, held.port, "k2", 10, conn=keep)
    until(lambda: gate.waiting == 1, "the kept connection's next request waits its turn")
    held.go("a", "b")
    assert k2.result(5) == "k2:10"
    assert a.result(5) and b.result(5)
    until(lambda: gate.held == 0, "nothing held")


def test_a_waiting_client_that_goes_away_leaves_the_queue(held):
    gate = held.gate
    held.submit("a"), held.submit("b")
    until(lambda: len(held.arrived) == 2, "a and b are read")
    raw = raw_conn(held.port, b"POST /hold HTTP/1.1\r\nhost: x\r\nx-n: c\r\ncontent-length: 10\r\n\r\n01234")  # half a body
    until(lambda: gate.waiting == 1, "c waits")
    raw.close()
    held.go("a")  # room: the gate reads c, meets its end, and frees its ticket
    held.go("b")
    until(lambda: gate.held == 0 and gate.waiting == 0, "c's place is freed")
    assert "c" not in held.arrived  # its body never came whole


def test_a_request_waits_at_most_max_wait(held):
    gate = held.gate
    gate.max_wait = 1.0
    held.submit("a"), held.submit("b")
    until(lambda: len(held.arrived) == 2, "a and b are read")
    started = time.monotonic()
    c: Future = held.submit("c")
    until(lambda: "c" in held.arrived, "c is read after max_wait, though a and b still hold the gate", 4)
    assert time.monotonic() - started >= 0.9
    held.go("a", "b", "c")
    assert c.result(5) == f"c:{BODY}"


def test_the_gate_is_off_at_zero():
    gate = ReadGate(0)
    assert not gate.full()
    t = gate.ticket(10**9)
    assert not gate.full() and gate.held == 10**9
    t.release()
    t.release()  # idempotent
    assert gate.held == 0


def test_a_ticket_holds_what_was_read_and_a_reservation_while_it_is_read():
    gate = ReadGate(1 << 20)
    t = gate.ticket(100)
    assert gate.held == RESERVE  # being read: at least the reservation
    t.reserve_up_to(10_000)  # the headers say 10 KB
    assert gate.held == 10_000
    t.read(20_000)  # more came than declared (a pipelined request behind it): all of it is held
    assert gate.held == 20_100
    t.unreserve()
    assert gate.held == 20_100
    t.release()
    assert gate.held == 0
    slow = gate.ticket(1)
    assert gate.held == RESERVE
    slow.expires = 0  # its time is up: what it sent is what it holds
    gate.full()
    gate.ticket(0).release()
    assert gate.held == 1


def raw_conn(port: int, data: bytes):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(data)
    return sock


def test_a_declared_huge_body_holds_only_what_was_sent(held):
    gate = held.gate
    liar = raw_conn(held.port, b"POST /hold HTTP/1.1\r\nhost: x\r\nx-n: liar\r\ncontent-length: 30000000\r\n\r\n0123")
    until(lambda: gate.held > 0, "the liar's request is being read")
    assert gate.held == RESERVE  # 30 MB declared: 64 KB reserved, for a moment
    a = held.submit("a")
    until(lambda: "a" in held.arrived, "a is read")
    started = time.monotonic()
    b = held.submit("b")
    until(lambda: gate.waiting == 1, "b waits: a and the liar's reservation fill the budget")
    until(lambda: "b" in held.arrived, "the liar's reservation expires: b is read", RESERVATION_SECONDS + 3)
    assert time.monotonic() - started < gate.max_wait
    assert gate.held < 2 * BODY + 1000  # a, b, and the liar's few bytes
    held.go("a", "b")
    assert a.result(5) == f"a:{BODY}" and b.result(5) == f"b:{BODY}"
    liar.close()
    until(lambda: gate.held == 0, "the liar's bytes are let go with its connection")


def test_connections_that_send_a_byte_hold_their_reservation_for_a_moment_only(held):
    gate = held.gate
    teasers = [raw_conn(held.port, b"P") for _ in range(2)]  # 2 x 64 KB reserved: over the budget
    until(lambda: gate.held >= gate.budget, "the teasers reserved their room")
    started = time.monotonic()
    a = held.submit("a")
    until(lambda: gate.waiting == 1, "a waits behind the reservations")
    until(lambda: "a" in held.arrived, "the reservations expire: a is read", RESERVATION_SECONDS + 3)
    assert time.monotonic() - started < gate.max_wait  # not for max_wait
    assert gate.held < BODY + 1000
    held.go("a")
    assert a.result(5)
    for t in teasers:
        t.close()


def test_a_waiting_kept_connection_is_not_closed_as_idle(held_short_keepalive):
    held = held_short_keepalive
    gate = held.gate
    keep = http.client.HTTPConnection("127.0.0.1", held.port, timeout=20)
    held.go("k", "k2")
    assert post(held.port, "k", size=10, conn=keep) == "k:10"
    held.submit("a"), held.submit("b")
    until(lambda: len(held.arrived) == 3, "a and b are read")
    k2 = ThreadPoolExecutor(1).submit(post, held.port, "k2", 10, conn=keep)
    until(lambda: gate.waiting == 1, "the kept connection's next request waits")
    time.sleep(1.5)  # past the 1 s keep-alive timeout, waiting
    held.go("a", "b")
    assert k2.result(5) == "k2:10"


def test_the_gateway_frees_a_streamed_request_once_kiro_answers(fake, tmp_path):
    """The model route calls `answered` when Kiro's first events are in: a long stream does not
    keep its request's bytes, nor block other requests from being read."""
    gw = start_gateway(fake, tmp_path, pending_bodies_mb=1)
    gate: ReadGate = gw.app.state.gateway.read_gate
    fake.clear_scripts()
    fake.add_script({"match": "slow-stream-please", "steps": [{"text": "one"}, {"delay": 1.5}, {"text": "two"}]})
    body = {"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "slow-stream-please " + "y" * 300_000}]}
    seen: list[int] = []
    try:
        with httpx.stream("POST", gw.base_url + "/v1/messages", json=body, timeout=20,
                          headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}) as r:
            assert r.status_code == 200
            text = ""
            for chunk in r.iter_text():
                text += chunk
                if "one" in text and not seen:
                    seen.append(gate.held)  # mid-stream: Kiro answered, the stream goes on
        assert "two" in text
        assert seen == [0]
        metrics = httpx.get(gw.base_url + "/metrics").text
        pending = float(re.search(r"^kiro_gateway_pending_body_bytes (\S+)$", metrics, re.M).group(1))
        assert 0 < pending < 1000  # only this GET's own header bytes
        assert "kiro_gateway_read_deferred_total 0.0" in metrics
    finally:
        fake.clear_scripts()
        gw.server.stop()
