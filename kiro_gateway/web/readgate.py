"""Back-pressure on reading requests: a burst waits in the kernel, not in the gateway's memory.

A request's body is held from the moment it is read until Kiro has answered it: the raw bytes,
the parsed request, and the Kiro body kept for a retry on another account. A burst (5,000 agents
sending their 80 KB conversation in the same second, a restart with every client retrying) would
hold all of them at once, and uvicorn reads every socket as soon as it can. `ReadGate` counts the
bytes of requests read but not yet answered; past its budget, a connection about to start a new
request is read one byte only — proof that a request is waiting, not an idle keep-alive — and
then not read again until answered requests free enough room (first come, first read; `max_wait`
seconds at most). What waits stays in the OS's socket buffers: a burst costs latency, not
memory, and no request is refused for it.

What a request is charged: the bytes actually read for it, and while it is being read, a
reservation of up to 64 KB (its Content-Length if smaller; none for a request without a body), so
that room freed lets in a few requests at a time, not every waiting one at once. A reservation
lasts until the request's body is read, or `RESERVATION_SECONDS` at most: a client that declares
a huge body and sends it slowly, or opens connections and sends a byte, holds only what it sent.

`GatedHttpToolsProtocol` is uvicorn's httptools protocol reading through a buffer of its own
(asyncio's `BufferedProtocol`): that is what lets it read exactly one byte, since uvloop starts
reading a connection right after `connection_made` whatever the protocol did there. The route that
answers a model request calls `answered(request)` once Kiro's first events arrived; any other
request is counted until its response is complete.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["ReadGate", "Ticket", "GatedHttpToolsProtocol", "answered", "STATE_KEY", "RESERVE", "RESERVATION_SECONDS"]

STATE_KEY = "kiro_gateway.read_gate"  # the gate, in the lifespan state uvicorn hands its protocols
_TICKET = "kiro_gateway.read_ticket"  # a request's ticket, in its ASGI scope
RESERVE = 64 * 1024  # what a request being read is charged at least, until its body is in
RESERVATION_SECONDS = 2.0  # how long a reservation stands for a request whose body does not come
_READ_SIZE = 256 * 1024  # what one read may take (uvloop's own read buffer is this size)


class Ticket:
    """The bytes one request holds in the gate, until it is answered (release is idempotent):
    the larger of what was read for it and its reservation."""

    __slots__ = ("gate", "size", "received", "reserve", "expires", "live")

    def __init__(self, gate: ReadGate, received: int, expires: float) -> None:
        self.gate = gate
        self.received = received
        self.reserve = RESERVE
        self.expires = expires
        self.size = max(received, RESERVE)
        self.live = True
        gate.held += self.size

    def _charge(self) -> None:
        if self.live:
            size = max(self.received, self.reserve)
            self.gate.held += size - self.size
            self.size = size

    def read(self, nbytes: int) -> None:
        self.received += nbytes
        if self.received > self.reserve:
            self._charge()

    def reserve_up_to(self, size: int) -> None:
        """The request's headers say how big its body is: the reservation need not be larger."""
        if size < self.reserve:
            self.reserve = size
            self._charge()

    def unreserve(self) -> None:
        """The body is in (or the reservation expired): what was read is what is held."""
        if self.reserve:
            self.reserve = 0
            self._charge()
            self.gate.freed()

    def release(self) -> None:
        if self.live:
            self.live = False
            self.gate.held -= self.size
            self.gate.freed()


class ReadGate:
    """The bytes of requests read and not yet answered, and the connections waiting to be read.

    `budget` bytes (0: no gate). A waiting connection is read again once the held bytes are under
    the budget, oldest first, or after `max_wait` seconds whatever the count (so the gate only ever
    delays: the pool's own admission still decides, in the client's dialect, if it must refuse)."""

    def __init__(self, budget: int, max_wait: float = 30.0) -> None:
        self.budget = budget
        self.max_wait = max_wait
        self.held = 0
        self.deferred = 0  # requests that waited, since start (a counter for /metrics)
        self.longest_wait = 0.0
        self._queue: deque[tuple[float, GatedHttpToolsProtocol]] = deque()
        self._reserved: deque[Ticket] = deque()  # tickets in the order they were taken (their expiry)
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def full(self) -> bool:
        if self.budget <= 0 or self.held < self.budget:
            return False
        self._expire(time.monotonic())
        return self.held >= self.budget

    def ticket(self, received: int = 0) -> Ticket:
        now = time.monotonic()
        self._expire(now)
        ticket = Ticket(self, received, now + RESERVATION_SECONDS)
        self._reserved.append(ticket)
        return ticket

    def _expire(self, now: float) -> None:
        """Reservations past their time end (the tickets are in the order they were taken, so
        the deque holds those of the last RESERVATION_SECONDS at most)."""
        reserved = self._reserved
        while reserved:
            head = reserved[0]
            if head.reserve and head.live and head.expires > now:
                return
            reserved.popleft()
            if head.reserve:
                head.reserve = 0
                head._charge()

    def wait(self, conn: GatedHttpToolsProtocol) -> None:
        self.deferred += 1
        self._queue.append((time.monotonic(), conn))
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    def forget(self, conn: GatedHttpToolsProtocol) -> None:
        """A waiting connection went away."""
        for i, (_, c) in enumerate(self._queue):
            if c is conn:
                del self._queue[i]
                return

    def freed(self) -> None:
        """Bytes were let go: read the waiting connections there is now room for."""
        if self._queue and self.held < self.budget:
            self.pump()

    def pump(self) -> None:
        """Read the oldest waiting connections while there is room (each reserves its room at once)."""
        queue = self._queue
        while queue and not self.full():
            since, conn = queue.popleft()
            self._resume(since, conn)

    def _resume(self, since: float, conn: GatedHttpToolsProtocol) -> None:
        self.longest_wait = max(self.longest_wait, time.monotonic() - since)
        conn.read_on(self.ticket())

    def _sweep(self) -> None:
        self._sweeper = None
        now = time.monotonic()
        limit = now - self.max_wait
        queue = self._queue
        while queue and queue[0][0] <= limit:  # waited long enough: read whatever the count
            since, conn = queue.popleft()
            self._resume(since, conn)
        self.pump()
        if queue:
            self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)


def answered(request: Any) -> None:
    """The request's bytes are no longer held (Kiro answered it, or it failed): let others be read."""
    ticket = request.scope.get(_TICKET)
    if ticket is not None:
        ticket.release()


_local = threading.local()  # one read buffer per thread's event loop (a read copies out of it at once)


def _buffer() -> memoryview:
    view = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(_READ_SIZE))
    return view


class _Http(HttpToolsProtocol):
    """uvicorn's protocol, telling its connection when a request's headers and body are in and when
    its response is complete (the parser calls these on it)."""

    conn: GatedHttpToolsProtocol

    def on_headers_complete(self) -> None:
        ticket = self.conn.headers_complete(self.headers)
        if ticket is not None:
            self.scope[_TICKET] = ticket  # type: ignore[literal-required]
        super().on_headers_complete()
        if ticket is not None and self.cycle is not None and self.cycle.scope is self.scope:
            self.conn.tickets.append((self.cycle, ticket))

    def on_message_complete(self) -> None:
        self.conn.message_complete()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self.conn.response_complete()
        super().on_response_complete()
        self.conn.maybe_between()


class GatedHttpToolsProtocol(asyncio.BufferedProtocol):
    """A connection reading new requests only while the gate has room (above), through uvicorn's
    HTTP/1.1 protocol (httptools). A buffered protocol by composition: uvloop reads through
    `get_buffer` only for a protocol that is not an `asyncio.Protocol`, which uvicorn's is."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.http = _Http(config, server_state, app_state, _loop)
        self.http.conn = self
        self.gate: ReadGate | None = app_state.get(STATE_KEY)
        self.between = True  # no request is being read or answered: the next byte starts one
        self.in_message = False  # a request's bytes are arriving (until its body is complete)
        self.current: Ticket | None = None  # that request's ticket: what is read is counted on it
        self.tickets: list[tuple[Any, Ticket]] = []  # (cycle, ticket) of requests not yet answered
        self._stash = b""  # the byte read to learn a request was waiting
        self._probing = False  # this read was given one byte
        self._view: memoryview = _buffer()

    # asyncio's protocol interface, passed on
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.http.connection_made(transport)  # type: ignore[arg-type]

    def eof_received(self) -> None:
        self.http.eof_received()  # None: the transport closes itself (no half-open connections)

    def pause_writing(self) -> None:
        self.http.pause_writing()

    def resume_writing(self) -> None:
        self.http.resume_writing()

    def get_buffer(self, sizehint: int) -> memoryview:
        probing = self._probing = self.between and self.gate is not None and self.gate.full()
        return self._view[:1] if probing else self._view

    def buffer_updated(self, nbytes: int) -> None:
        data = self._view[:nbytes]
        gate = self.gate
        if gate is not None:
            if self.between:
                if self._probing:
                    self._probing = False
                    self._stash = bytes(data)
                    http = self.http
                    http._unset_keepalive_if_required()  # a request is waiting: not an idle connection
                    http.flow.pause_reading()
                    gate.wait(self)
                    return
                self._start(gate.ticket(nbytes))
            elif self.current is not None:
                self.current.read(nbytes)
        self.http.data_received(data)  # type: ignore[arg-type]  # httptools copies what it keeps

    def connection_lost(self, exc: Exception | None) -> None:
        gate = self.gate
        if gate is not None:
            if self._stash:
                gate.forget(self)
            if self.current is not None:
                self.current.release()
            for _, ticket in self.tickets:
                ticket.release()
        self.http.connection_lost(exc)

    # the gate's side
    def _start(self, ticket: Ticket) -> None:
        self.current = ticket
        self.between = False
        self.in_message = True

    def read_on(self, ticket: Ticket) -> None:
        """The gate has room: this connection's waiting request is read now."""
        http = self.http
        if http.transport.is_closing():
            ticket.release()
            return
        stash, self._stash = self._stash, b""
        ticket.read(len(stash))
        self._start(ticket)
        http.data_received(stash)
        http.flow.resume_reading()

    def headers_complete(self, headers: list[tuple[bytes, bytes]]) -> Ticket | None:
        ticket = self.current
        if ticket is not None:
            size = 0  # no body (a GET)
            for name, value in headers:
                if name == b"content-length":
                    size = int(value) if value.isdigit() else RESERVE
                    break
                if name == b"transfer-encoding":
                    size = RESERVE  # chunked: its size is not known before it is read
            ticket.reserve_up_to(size)
        return ticket

    def message_complete(self) -> None:
        self.in_message = False
        ticket, self.current = self.current, None
        if ticket is not None:
            ticket.unreserve()
        self.maybe_between()

    def response_complete(self) -> None:
        tickets = self.tickets
        if tickets:
            for cycle, ticket in tickets:
                if cycle.response_complete:
                    ticket.release()
            self.tickets = [t for t in tickets if t[1].live]

    def maybe_between(self) -> None:
        """With the request read whole and answered, and none pipelined, the next byte starts one."""
        http = self.http
        cycle = http.cycle
        if not self.in_message and not http.pipeline and (cycle is None or cycle.response_complete):
            self.between = True
