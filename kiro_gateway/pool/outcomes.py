"""How an upstream failure changes a credential's health (docs/kiro-protocol.md, "Errors and
throttling"): throttling cools it down for Kiro's Retry-After, a used-up monthly quota exhausts it
until the reset, suspicion rests it long (and raises an alert), a suspension takes it out, Kiro's
own trouble is counted without a penalty, and anything else counts towards unhealthy.
"""

from __future__ import annotations

import time

from ..config import Settings
from .alerts import Alerts
from .credential import Credential
from .health import ACTIVE, Health, next_month_utc
from .usage import UsageTracker

__all__ = ["record_failure"]


def record_failure(h: Health, cred: Credential, kind: str, reason: str | None, message: str,
                   retry_after: float | None, settings: Settings, usage: UsageTracker, alerts: Alerts) -> bool:
    """Apply one failure to `h`; returns whether the credential is now penalised (not active)."""
    now = time.time()
    if reason == "MONTHLY_REQUEST_COUNT":
        until = usage.reset_at(cred, now)
        h.exhaust(until or next_month_utc(now))
        if until is None:
            usage.refresh_soon(cred)  # learn the real reset date
    elif reason == "SUSPICIOUS_ACTIVITY":  # rest it long: more traffic now risks a ban
        rest = max(settings.suspicion_cooldown_seconds, retry_after or 0)
        h.cool_down(now, rest)
        alerts.raise_alert(cred.id, reason, now + rest)
    elif kind == "rate_limit":
        h.cool_down(now, retry_after or settings.cooldown_seconds)
        if reason is None and "throttled by the service" in message.lower():
            usage.refresh_soon(cred, exhausted_check=True)  # has meant credits ran out: usage says
    elif reason == "TEMPORARILY_SUSPENDED" or kind == "permission":
        h.suspend(message[:200])
    elif kind in ("upstream", "overloaded", "timeout"):
        h.transient(now)  # Kiro's trouble, not the account's: counted, no penalty
    else:
        h.failed(now, settings.failure_limit, settings.unhealthy_seconds)
    return h.status(cred.disabled, now) != ACTIVE
