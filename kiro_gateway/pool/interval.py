"""Per-account minimum interval between request starts, with jitter.

A steady machine-like rhythm from one account is what risk control notices; so when
`minIntervalPerCredential` is set, two requests on one account start at least that many seconds
apart, plus a random `pacingJitter` share of it, each gap drawn anew. Per process: the state
store's request caps (pacing.py) are what several processes share.
"""

from __future__ import annotations

import asyncio
import random
import time

from ..config import Settings

__all__ = ["MinInterval"]

_RANDOM = random.Random()


class MinInterval:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._next: dict[str, float] = {}  # credential id -> earliest start of its next request

    def delay(self, cid: str, now: float | None = None) -> float:
        """Reserve the account's next start; the seconds to wait for it (0: now)."""
        gap = self.settings.min_interval_per_credential
        if not gap:
            return 0.0
        now = time.monotonic() if now is None else now
        start = max(now, self._next.get(cid, 0.0))
        self._next[cid] = start + gap * (1 + _RANDOM.uniform(0, self.settings.pacing_jitter))
        return start - now

    async def wait(self, cid: str) -> None:
        wait = self.delay(cid)
        if wait > 0:
            await asyncio.sleep(wait)

    def forget(self, cid: str) -> None:
        self._next.pop(cid, None)
