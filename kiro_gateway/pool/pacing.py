"""Account pacing: per-credential caps on concurrent requests and on requests per minute.

Bursts from one account are what Kiro's risk control notices (docs/kiro-protocol.md, “Errors and throttling”), so a credential
serves at most `maxConcurrentPerCredential` requests at once and `maxRpmPerCredential` a minute,
counted in the state store so every gateway process sharing it honours one cap. A request finding
every account at its cap waits (up to `queueTimeout`) for a slot, woken by a local release or a
jittered poll (slots freed by other processes), instead of hammering. Slots are leases that expire
unless renewed, so a process that dies holding some frees them within `SLOT_TTL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time

from ..config import Settings
from ..state.base import StateStore, StoreError
from ..util.ids import jitter

log = logging.getLogger("kiro_gateway.pool.pacing")

__all__ = ["Pacer", "SLOT_TTL"]

SLOT_TTL = 30.0  # seconds a slot outlives its holder's last renewal
_RENEW_EVERY = 10.0
_MAX_HOLD = 3600.0  # a slot still held after this was leaked (its request vanished): let it go
_POLL = 0.1  # seconds between looks for slots freed elsewhere


class Pacer:
    def __init__(self, settings: Settings, store: StateStore) -> None:
        self.settings = settings
        self.store = store
        self.held: dict[str, tuple[str, float]] = {}  # lease → (scope, taken at)
        self.waiting = 0
        self._seq = itertools.count(1)
        self._proc = secrets.token_hex(4)
        self._freed: asyncio.Event | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._warned = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.settings.max_concurrent_per_credential or self.settings.max_rpm_per_credential)

    async def take(self, cid: str) -> tuple[bool, str | None, float]:
        """(admitted, slot lease to give back, seconds to wait when not admitted)."""
        s, scope = self.settings, f"cred:{cid}"
        lease = None
        try:
            if s.max_concurrent_per_credential:
                lease = f"{self._proc}:{next(self._seq)}"
                if not await self.store.acquire_slot(scope, lease, s.max_concurrent_per_credential, SLOT_TTL):
                    return False, None, _POLL
                self.held[lease] = (scope, time.monotonic())
                self._ensure_renewer()
            if s.max_rpm_per_credential:
                wait = await self.store.take_rate(scope, s.max_rpm_per_credential, 60.0)
                if wait > 0:
                    if lease is not None:
                        self.release(lease)
                    return False, None, wait
        except StoreError as e:  # the store is down: serve unpaced rather than not at all
            self._warn(e)
            if lease is not None:
                self.held.pop(lease, None)
            return True, None, 0.0
        return True, lease, 0.0

    def release(self, lease: str) -> None:
        held = self.held.pop(lease, None)
        if held is not None:
            self.store.release_slot(held[0], lease)
            if self._freed is not None:
                self._freed.set()
                self._freed = None

    async def wait(self, seconds: float) -> None:
        """Until a slot is freed here, or `seconds` (jittered, so waiters do not retry in step)."""
        if self._freed is None:
            self._freed = asyncio.Event()
        freed = self._freed
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(freed.wait(), max(0.005, seconds) * jitter(0.8, 1.2))
        finally:
            self.waiting -= 1
        await asyncio.sleep(jitter(0, 0.005))  # spread the wake-ups of many waiters

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew(), name="kg-pacing-renew")

    async def _renew(self) -> None:
        while self.held:
            await asyncio.sleep(_RENEW_EVERY)
            now = time.monotonic()
            for lease in [k for k, (_, since) in self.held.items() if now - since > _MAX_HOLD]:
                self.release(lease)
            try:
                await self.store.renew_slots([(scope, lease) for lease, (scope, _) in self.held.items()], SLOT_TTL)
            except StoreError as e:
                self._warn(e)

    async def stop(self) -> None:
        task, self._renewer = self._renewer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _warn(self, e: Exception) -> None:
        now = time.monotonic()
        if now - self._warned > 30:
            self._warned = now
            log.warning("account pacing without the state store (%s): not paced", e)
