"""Coordination for a store that one process owns: `Locks` and `Leases` in memory.

A one-process store (SQLite) needs no cross-process locking: an asyncio lock with an expiry does,
and pacing counters are ephemeral (a restart empties every slot anyway). It offers no `TokenStore`:
the credentials file is the one home of tokens when only one process writes it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from .records import LockTimeout

__all__ = ["LocalCoordination"]


class LocalCoordination:
    """Implements `Locks` and `Leases` (protocols.py) for one process."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[float]]] = {}
        self._slots: dict[str, dict[str, float]] = {}  # scope → lease → expires
        self._rates: dict[str, deque[float]] = {}
        self._starts: dict[str, float] = {}  # scope → when the next start may be (monotonic)

    @asynccontextmanager
    async def _lock(self, name: str, ttl: float, wait: float) -> AsyncIterator[None]:
        lock, held_until = self._locks.setdefault(name, (asyncio.Lock(), [0.0]))
        try:
            await asyncio.wait_for(lock.acquire(), wait)
        except TimeoutError:
            raise LockTimeout(name) from None
        held_until[0] = time.monotonic() + ttl
        try:
            yield
        finally:
            lock.release()

    def lock(self, name: str, ttl: float, wait: float) -> AbstractAsyncContextManager[None]:
        return self._lock(name, ttl, wait)

    async def acquire_slot(self, scope: str, lease: str, cap: int, ttl: float) -> bool:
        held = self._slots.setdefault(scope, {})
        now = time.monotonic()
        if len(held) >= cap:
            for k in [k for k, until in held.items() if until <= now]:
                del held[k]  # a holder that never released (a bug or a cancelled task)
        if len(held) >= cap:
            return False
        held[lease] = now + ttl
        return True

    def release_slot(self, scope: str, lease: str) -> None:
        held = self._slots.get(scope)
        if held is not None:
            held.pop(lease, None)

    async def renew_slots(self, slots: list[tuple[str, str]], ttl: float) -> None:
        until = time.monotonic() + ttl
        for scope, lease in slots:
            held = self._slots.get(scope)
            if held is not None and lease in held:
                held[lease] = until

    async def reserve_start(self, scope: str, gap: float) -> float:
        now = time.monotonic()
        start = max(now, self._starts.get(scope, 0.0))
        self._starts[scope] = start + gap
        if len(self._starts) > 4096:  # scopes long past: nothing to remember
            self._starts = {k: v for k, v in self._starts.items() if v > now}
        return start - now

    async def take_rate(self, scope: str, cap: int, window: float) -> float:
        times = self._rates.setdefault(scope, deque())
        now = time.monotonic()
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) < cap:
            times.append(now)
            return 0.0
        return max(0.001, times[0] + window - now)
