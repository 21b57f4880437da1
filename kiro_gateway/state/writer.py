"""Write-behind: one background task gathers what changed in memory and writes it as one batch.

Requests only touch memory (a set of dirty credential ids, a queue of log records); this task wakes
every `stateFlushInterval` seconds — or at once when something urgent happened, like a cooldown
that other processes must honour — asks each source for its part of a `Batch`, and writes it. A
failed write is given back to its sources to be tried again. Admin reads call `flush()` first, so
what they show includes the request that just finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from .protocols import RequestLogStore, WriteBehind
from .records import Batch
from ..util.tasks import cancel_and_wait, failed

log = logging.getLogger("kiro_gateway.state")

__all__ = ["StateWriter", "Source", "WrittenStore"]

_PRUNE_EVERY = 60.0


class Source(Protocol):
    def collect(self, batch: Batch) -> None:
        """Move pending changes into the batch."""

    def done(self, batch: Batch, ok: bool) -> None:
        """The batch was written (ok) or not (take the changes back)."""

    async def after(self) -> None:
        """Work that follows a write: reloading what other processes changed."""


class WrittenStore(WriteBehind, RequestLogStore, Protocol):
    """What the writer needs of a store: batches, and the log's retention."""


class StateWriter:
    def __init__(self, store: WrittenStore, interval: float,
                 retention: Callable[[], tuple[int, float]] = lambda: (0, 0.0)) -> None:
        self.store = store
        self.interval = interval
        self.retention = retention  # now's (max log entries, max age in seconds): settings reload live
        self.sources: list[Source] = []
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._pruned = 0.0
        self._logged = 0  # request-log rows written since the last prune
        self._warned = 0.0
        self.writes = 0

    def add(self, source: Source) -> None:
        self.sources.append(source)

    def wake(self) -> None:
        """Write soon (an urgent change); callable from any code on the event loop."""
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._wake, self._lock = asyncio.Event(), asyncio.Lock()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kg-state-writer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        with contextlib.suppress(Exception):
            await self.flush()  # what is still pending survives the restart

    async def flush(self) -> None:
        """Write whatever is pending now (and reload what others changed). Never raises: a source
        that fails to give its part is skipped this round (logged and counted), the others are written."""
        if self._lock is None:
            return
        async with self._lock:
            batch = Batch()
            for s in self.sources:
                try:
                    s.collect(batch)
                except Exception as e:  # noqa: BLE001 - one bad record must not stop every later write
                    failed(f"state-writer.collect.{type(s).__name__}", e)
            ok = True
            if not batch.empty():
                try:
                    await self.store.write(batch)
                    self.writes += 1
                    self._logged += len(batch.logs)
                except Exception as e:  # noqa: BLE001 - kept and retried; the gateway keeps serving
                    ok = False
                    now = time.monotonic()
                    if now - self._warned > 30:
                        self._warned = now
                        log.warning("state store write failed (%s); will retry", type(e).__name__)
            for s in self.sources:
                try:
                    s.done(batch, ok)
                except Exception as e:  # noqa: BLE001
                    failed(f"state-writer.done.{type(s).__name__}", e)
            for s in self.sources:
                try:
                    await s.after()
                except Exception as e:  # noqa: BLE001 - a reload failure is retried next round
                    log.debug("state reload failed: %s", type(e).__name__)

    async def prune(self) -> None:
        """Apply the request log's retention (by count and age) now."""
        await self.store.prune(*self.retention())

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as e:  # noqa: BLE001 - flush does not raise; should it ever, the loop goes on
                failed("state-writer", e)
            now = time.monotonic()
            max_count = self.retention()[0]
            # Every minute, and sooner under load: the log never holds much more than its limit.
            if now - self._pruned > _PRUNE_EVERY or (max_count and self._logged > max(100, max_count // 10)):
                self._pruned, self._logged = now, 0
                try:
                    await self.prune()
                except Exception as e:  # noqa: BLE001 - retried next time
                    failed("state-writer.prune", e)
