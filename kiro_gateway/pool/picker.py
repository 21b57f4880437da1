"""Which credential serves next, from memory only (the hot path).

Among the credentials that may serve a request, a session's sticky account wins while it is
active; otherwise the load-balancing mode orders the active ones (selection.py). When none is
active the pool is never blacked out: the soonest-ready one serves. The errors say when to try
again (Retry-After), from the resting accounts' health.
"""

from __future__ import annotations

import time

from ..config import Settings
from ..core.conversation import GatewayError
from .credential import Credential
from .health import ACTIVE, COOLDOWN, EXHAUSTED, Health
from .selection import Sticky, order_candidates, ramp_offset

__all__ = ["Picker"]


class Picker:
    def __init__(self, settings: Settings, health: dict[str, Health], sticky: Sticky) -> None:
        self.settings = settings
        self.health = health
        self.sticky = sticky
        self.rr = 0
        self.deck: list[str] = []  # `random`: the shuffled accounts not drawn yet
        self.ramp: dict[str, int] = {}  # `balanced` counts a joining account from the others' least

    def join(self, cid: str, others: list[Credential]) -> None:
        offset = ramp_offset(cid, others, self.health)
        if offset:
            self.ramp[cid] = offset

    def forget(self, cid: str) -> None:
        self.ramp.pop(cid, None)

    def pick(self, servable: list[Credential], candidates: list[Credential], session: str | None = None,
             pin: str | None = None) -> Credential:
        """The credential to try next among `servable`; raises when none can serve. `candidates`:
        every enabled credential (what the errors' advice is computed from)."""
        now = time.time()
        if pin is not None:  # a client key pinned to one account
            servable = [c for c in servable if c.id == pin]
            if not servable:
                raise GatewayError("overloaded", f"This client key is pinned to Kiro account #{pin}, which "
                                   "cannot serve this request now.", 503, retry_after=self.ready_in(pin))
        if not servable:
            if not candidates:
                # Clients are not told where the server keeps its files; the operator's log is.
                raise GatewayError("upstream", "No usable Kiro credential is configured on this gateway: its "
                                   "operator adds one (`kiro-gateway login`, `kiro-gateway import`, or the "
                                   "console at /admin).", 503)
            raise GatewayError("overloaded", "No Kiro credential is left to try for this request.", 503,
                               retry_after=self.seconds_until_ready(candidates))
        health = self.health
        active = [c for c in servable if health[c.id].status(False, now) == ACTIVE]
        if session and (sid := self.sticky.get(session, now)) and any(c.id == sid for c in active):
            return next(c for c in active if c.id == sid)
        if active:
            self.rr += 1
            return order_candidates(active, health, self.settings.load_balancing, self.rr, self.ramp, self.deck)[0]
        waiting = [c for c in servable if health[c.id].status(False, now) in (COOLDOWN, EXHAUSTED)
                   or health[c.id].unhealthy_until > now]
        if waiting:
            return min(waiting, key=lambda c: (health[c.id].ready_at(), c.priority))
        raise GatewayError("permission", "Every Kiro credential is unhealthy: "
                           + "; ".join(f"#{c.id}: {health[c.id].reason}" for c in servable), 503)

    def ready_in(self, cid: str) -> float | None:
        h = self.health.get(cid)
        wait = h.ready_at() - time.time() if h is not None else 0
        return max(1.0, wait) if wait > 0 else None

    def seconds_until_ready(self, candidates: list[Credential]) -> float | None:
        """When the soonest resting credential (cooldown, exhausted, unhealthy) is back, in seconds
        from now; None when none rests or none is enabled. What a 429/503's Retry-After says."""
        now = time.time()
        ready = [self.health[c.id].ready_at() for c in candidates]
        future = [r - now for r in ready if r > now]
        return max(1.0, min(future)) if future and len(future) == len(ready) else None
