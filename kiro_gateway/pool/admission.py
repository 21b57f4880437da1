"""Admitting a request onto an account: the loop behind the pool's `acquire`.

It asks for the next account, gets it a fresh token, takes a pacing slot when requests are paced,
and builds the lease. An account whose refresh token is dead, or whose proxy cannot be used, is
skipped for this request; an account at its cap is marked busy and another is tried, and when
every healthy one is busy the request waits (up to `queueTimeout`) for a slot to come free rather
than going to a resting account. Once admitted, the session is bound to the account and the
per-credential minimum interval is honoured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from ..config import Settings
from ..core.conversation import GatewayError
from ..kiro.auth import RefreshError
from .credential import Credential
from .health import ACTIVE, Health
from .interval import MinInterval
from .lease import Lease, Leases
from .pacing import Pacer
from .sync import PoolSync

log = logging.getLogger("kiro_gateway.pool")

__all__ = ["Admission", "Pick"]

# The next credential to try, none of the given ids; raises GatewayError when none can serve.
Pick = Callable[[set[str]], Credential]


class Admission:
    def __init__(self, settings: Settings, health: dict[str, Health], tokens: Callable[[Credential], Awaitable[str]],
                 pacer: Pacer, leases: Leases, sync: PoolSync, interval: MinInterval) -> None:
        self.settings = settings
        self.health = health
        self.tokens = tokens
        self.pacer = pacer
        self.leases = leases
        self.sync = sync
        self.interval = interval

    def _active(self, cred: Credential) -> bool:
        h = self.health.get(cred.id)
        return h is not None and h.status(cred.disabled) == ACTIVE

    async def admit(self, pick: Pick, session: str | None, exclude: frozenset[str] | set[str]) -> Lease:
        if session:
            await self.sync.lookup(session)
        skip, busy = set(exclude), set[str]()
        soonest, deadline = 0.1, 0.0
        while True:
            try:
                cred = pick(skip | busy)
                if busy and not self._active(cred):
                    raise GatewayError("overloaded", "busy")  # better wait for a busy healthy account
            except GatewayError:
                if not busy:
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.settings.queue_timeout
                if now >= deadline:
                    raise GatewayError("overloaded", "Every Kiro account is at its request cap "
                                       "(maxConcurrentPerCredential / maxRpmPerCredential); try again shortly.",
                                       429, retry_after=max(1.0, soonest)) from None
                await self.pacer.wait(min(soonest, deadline - now))
                busy.clear()
                soonest = 0.1
                continue
            try:
                token = await self.tokens(cred)
            except RefreshError:
                skip.add(cred.id)
                continue
            slot = None
            if self.pacer.enabled:
                admitted, slot, wait = await self.pacer.take(cred.id)
                if not admitted:
                    busy.add(cred.id)
                    soonest = min(soonest, wait) if len(busy) > 1 else wait
                    continue
            try:
                lease = self.leases.make(cred, token, slot)
            except GatewayError as e:  # an unusable proxyUrl: this credential cannot be reached
                if slot is not None:
                    self.pacer.release(slot)
                log.warning("%s", e.message)
                skip.add(cred.id)
                continue
            if session:
                await self.sync.bind(session, cred.id)
            await self.interval.wait(cred.id)  # minIntervalPerCredential, jittered
            return lease
