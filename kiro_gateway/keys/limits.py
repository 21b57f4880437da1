"""Per-key limits: requests per minute and tokens per UTC day, answered with 429 in the client's dialect.

Requests per minute are counted in the state store's sliding window (shared by every gateway
process), only for keys that have the limit, so unlimited keys cost nothing. Tokens are known only
once a reply ends: each process adds them to its own count of the day and, with a shared store,
re-reads the day's total every couple of seconds — a key may overshoot by what is in flight.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..core.conversation import GatewayError
from ..util.clock import utc_day
from ..state.base import StateStore, StoreError
from .registry import ClientKey

log = logging.getLogger("kiro_gateway.keys")

__all__ = ["KeyLimits"]

_REREAD = 2.0  # seconds between reads of a key's day total from a shared store


@dataclass(slots=True)
class _Day:
    day: str
    stored: float  # tokens of the day as read from the store
    local: float = 0.0  # tokens spent here since
    read_at: float = 0.0


class KeyLimits:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._days: dict[str, _Day] = {}
        self._warned = 0.0

    async def check(self, key: ClientKey) -> None:
        """Raise a rate_limit GatewayError (with Retry-After) when the key is over a limit."""
        try:
            if key.rpm:
                wait = await self.store.take_rate(f"key:{key.id}", key.rpm, 60.0)
                if wait > 0:
                    raise GatewayError("rate_limit", f"API key '{key.name}' is over its limit of {key.rpm} "
                                       "requests per minute.", retry_after=wait)
            if key.tpd:
                used = await self.used_today(key.id)
                if used >= key.tpd:
                    now = time.time()
                    raise GatewayError("rate_limit", f"API key '{key.name}' has used its {key.tpd} tokens for "
                                       "today (UTC).", retry_after=86400 - now % 86400)
        except StoreError as e:  # the store is down: let the request through
            now = time.monotonic()
            if now - self._warned > 30:
                self._warned = now
                log.warning("key limits not enforced: %s", e)

    def spent(self, key_id: str, tokens: int) -> None:
        d = self._days.get(key_id)
        if d is not None and d.day == utc_day(time.time()):
            d.local += tokens

    async def used_today(self, key_id: str) -> float:
        day = utc_day(time.time())
        d = self._days.get(key_id)
        if d is None or d.day != day or (self.store.shared and time.monotonic() - d.read_at > _REREAD):
            vec = (await self.store.key_usage(day)).get(key_id)
            stored = (vec[1] + vec[2]) if vec else 0.0
            d = self._days[key_id] = _Day(day, stored, 0.0, time.monotonic())
        return d.stored + d.local
