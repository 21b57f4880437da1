"""What the pool knows about each credential at run time, and how failures change it.

States (issue: credential pool): Active; Cooldown (throttled, back by itself); Exhausted (monthly
quota used up, back at the reset date); Unhealthy (suspended, or failing repeatedly — the latter
heals after a while); Disabled (by hand, or a dead refresh token). Plain data, so a state store can
persist and share it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, UTC
from typing import Any

__all__ = ["Health", "next_month_utc", "ACTIVE", "COOLDOWN", "EXHAUSTED", "UNHEALTHY", "DISABLED"]

ACTIVE, COOLDOWN, EXHAUSTED, UNHEALTHY, DISABLED = "active", "cooldown", "exhausted", "unhealthy", "disabled"


def next_month_utc(now: float | None = None) -> float:
    d = datetime.fromtimestamp(now or time.time(), UTC)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


@dataclass(slots=True)
class Health:
    success_count: int = 0
    failure_count: int = 0
    consecutive_failures: int = 0
    refresh_failures: int = 0
    last_used: float = 0.0
    cooldown_until: float = 0.0
    exhausted_until: float = 0.0
    unhealthy_until: float = 0.0  # 0 with a reason: until reset by hand
    reason: str | None = None
    in_flight: int = 0

    def status(self, disabled: bool, now: float | None = None) -> str:
        if disabled:
            return DISABLED
        now = now or time.time()
        if self.reason and (self.unhealthy_until == 0 or self.unhealthy_until > now):
            return UNHEALTHY
        if self.exhausted_until > now:
            return EXHAUSTED
        if self.cooldown_until > now:
            return COOLDOWN
        return ACTIVE

    def ready_at(self) -> float:
        """When a cooling, exhausted or temporarily unhealthy credential can serve again."""
        return max(self.cooldown_until, self.exhausted_until, self.unhealthy_until)

    # -- transitions -----------------------------------------------------------------------------

    def succeeded(self, now: float) -> None:
        self.success_count += 1
        self.consecutive_failures = 0
        self.last_used = now
        self.cooldown_until = 0.0
        if self.reason and self.unhealthy_until:
            self.reason, self.unhealthy_until = None, 0.0

    def failed(self, now: float, limit: int, heal_after: float) -> None:
        self.failure_count += 1
        self.consecutive_failures += 1
        self.last_used = now
        if self.consecutive_failures >= limit:
            self.reason = f"{self.consecutive_failures} consecutive failures"
            self.unhealthy_until = now + heal_after

    def transient(self, now: float) -> None:
        self.failure_count += 1
        self.last_used = now

    def cool_down(self, now: float, seconds: float) -> None:
        self.failure_count += 1
        self.cooldown_until = now + seconds

    def exhaust(self, until: float) -> None:
        self.failure_count += 1
        self.exhausted_until = until

    def suspend(self, reason: str) -> None:
        self.failure_count += 1
        self.reason = reason
        self.unhealthy_until = 0.0

    def reset(self) -> None:
        self.consecutive_failures = 0
        self.refresh_failures = 0
        self.cooldown_until = self.exhausted_until = self.unhealthy_until = 0.0
        self.reason = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
