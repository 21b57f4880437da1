"""Per-account minimum interval between request starts, with jitter.

A steady machine-like rhythm from one account is what risk control notices; so when
`minIntervalPerCredential` is set, two requests on one account start at least that many seconds
apart, plus a random `pacingJitter` share of it, each gap drawn anew. The starts are reserved in
the state store, so gateway processes sharing one (team mode) keep the interval between them too;
when the store cannot answer, this process keeps it on its own until it can.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from ..config import Settings
from ..state.base import StoreError
from ..state.protocols import Leases

__all__ = ["MinInterval"]

log = logging.getLogger("kiro_gateway.pool.interval")

_RANDOM = random.Random()


class MinInterval:
    def __init__(self, settings: Settings, store: Leases) -> None:
        self.settings = settings
        self.store = store
        self._next: dict[str, float] = {}  # credential id -> earliest next start, while the store is away
        self._warned = False

    def gap(self) -> float:
        """The next gap: the minimum plus a fresh random share of it (0: no interval set)."""
        gap = self.settings.min_interval_per_credential
        return gap * (1 + _RANDOM.uniform(0, self.settings.pacing_jitter)) if gap else 0.0

    async def delay(self, cid: str) -> float:
        """Reserve the account's next start; the seconds to wait for it (0: now)."""
        gap = self.gap()
        if not gap:
            return 0.0
        try:
            wait = await self.store.reserve_start(f"cred:{cid}", gap)
            self._warned = False
            return wait
        except StoreError as e:
            if not self._warned:
                log.warning("the state store cannot space requests (%s); this process spaces its own", e)
                self._warned = True
        now = time.monotonic()
        start = max(now, self._next.get(cid, 0.0))
        self._next[cid] = start + gap
        return start - now

    async def wait(self, cid: str) -> None:
        wait = await self.delay(cid)
        if wait > 0:
            await asyncio.sleep(wait)

    def forget(self, cid: str) -> None:
        self._next.pop(cid, None)
