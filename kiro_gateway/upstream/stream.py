"""One accepted Kiro response as the client's reply: batches of reply events, one per network read.

Kiro's first events were read before the reply was handed over (a failure before any output is
still an HTTP error); what follows arrives here, with keep-alive pings while Kiro is silent and
an `ErrorEvent` when the stream breaks, times out or cannot be decoded. The stop sequences and
JSON mode (core/) filter the batches on the way out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp

from ..config import Settings
from ..core.conversation import ErrorEvent, Ping, ReplyEvent
from ..core.jsonmode import json_only
from ..core.stops import stop_at
from ..kiro.eventstream import EventStreamError
from ..kiro.events import ReplyMapper
from ..kiro.request import KiroRequest
from ..pool.pool import Lease

__all__ = ["ReplyStream"]

_PING: list[ReplyEvent] = [Ping()]


class ReplyStream:
    """Reply events of one accepted upstream response, in batches (one per network read)."""

    def __init__(self, resp: aiohttp.ClientResponse, mapper: ReplyMapper,
                 first: list[ReplyEvent], settings: Settings, request: KiroRequest, lease: Lease,
                 json_mode: bool = False, on_close: Callable[[Lease], None] | None = None,
                 stop_sequences: list[str] | None = None) -> None:
        self.resp = resp
        self.mapper = mapper
        self.input_estimate = mapper.estimated_input
        self.first = first
        self.ping_interval = settings.ping_interval
        self.read_timeout = settings.read_timeout
        self.request = request
        self.lease = lease
        self.json_mode = json_mode
        self.on_close = on_close
        self.stop_sequences = stop_sequences
        self.served_model = request.model.kiro_id  # the Kiro model that answers (a fallback's, maybe)
        self.fallback = False

    def close(self) -> None:
        """Let go of the response and the account when the reply will not be read to its end."""
        self.resp.release()
        if self.on_close is not None:
            self.on_close(self.lease)
            self.on_close = None

    def __aiter__(self) -> AsyncIterator[list[ReplyEvent]]:
        batches = self._batches()
        if self.stop_sequences:  # Kiro has none: the gateway cuts the answer (stops.py)
            batches = stop_at(batches, self.stop_sequences, self.input_estimate)
        return json_only(batches) if self.json_mode else batches

    async def _batches(self) -> AsyncIterator[list[ReplyEvent]]:
        try:
            if self.first:
                yield self.first
            async for batch in _read(self.resp, self.mapper, self.ping_interval, self.read_timeout):
                yield batch
        finally:
            self.close()

    async def collect(self) -> list[ReplyEvent]:
        """Every event of the reply (for non-streaming answers), without keep-alives."""
        out: list[ReplyEvent] = []
        async for batch in self:
            out.extend(e for e in batch if not isinstance(e, Ping))
        return out


class _IdleWatch:
    """Interrupts a read after `interval` seconds of upstream silence, so a keep-alive can go out.

    `asyncio.timeout()` around every read reschedules a timer per frame; here a read only stamps
    the time, and one timer re-arms itself lazily, interrupting the task (as asyncio.timeout does,
    by cancelling it) only while it waits on the upstream read.
    """

    __slots__ = ("loop", "task", "interval", "last", "handle", "fired", "waiting")

    def __init__(self, interval: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.interval = interval
        self.last = self.loop.time()
        self.fired = False
        self.waiting = False
        self.handle = self.loop.call_at(self.last + interval, self._check)

    def _check(self) -> None:
        now = self.loop.time()
        due = self.last + self.interval
        if now >= due and self.waiting and self.task is not None:
            self.fired = True
            self.task.cancel()
            due = now + self.interval
        elif now >= due:
            due = now + self.interval  # busy writing to the client, not waiting: look again later
        self.handle = self.loop.call_at(due, self._check)

    def interrupted(self) -> bool:
        """After a CancelledError: was it this watch's own interruption (and nothing else's)?"""
        if not self.fired:
            return False
        self.fired = False
        return self.task is not None and self.task.uncancel() == 0

    def close(self) -> None:
        self.handle.cancel()


async def _read(resp: aiohttp.ClientResponse, mapper: ReplyMapper, ping: float,
                limit: float) -> AsyncIterator[list[ReplyEvent]]:
    content = resp.content
    idle = 0.0
    watch = _IdleWatch(ping)
    try:
        while True:
            watch.waiting = True
            try:
                chunk = await content.readany()
            except asyncio.CancelledError:
                watch.waiting = False
                if not watch.interrupted():
                    raise
                idle += ping
                if idle >= limit:
                    yield [ErrorEvent("timeout", f"Kiro sent nothing for {int(idle)} s; the reply was abandoned.")]
                    return
                yield _PING
                continue
            except (aiohttp.ClientError, ConnectionError) as e:
                watch.waiting = False
                yield [ErrorEvent("upstream", f"Kiro's stream broke off: {type(e).__name__}")]
                return
            watch.waiting = False
            watch.last = watch.loop.time()
            idle = 0.0
            if not chunk:
                break
            try:
                events = mapper.feed(chunk)
            except EventStreamError as e:
                yield [ErrorEvent("upstream", f"Kiro's stream could not be decoded: {e}")]
                return
            if events:
                yield events
                if mapper.errored:
                    return
    finally:
        watch.close()
    try:
        mapper.check_truncated()
    except EventStreamError as e:
        yield [ErrorEvent("upstream", f"Kiro's stream ended mid-message: {e}")]
        return
    yield mapper.finish()
