"""Usage limits per credential: Kiro's `getUsageLimits`, parsed and cached (docs/kiro-protocol.md, “Usage limits”).

What it tells the pool: the subscription title (free-tier accounts are skipped for Opus, as
kiro.rs does), the account's email, and when a used-up monthly quota comes back. The title and
email are kept in the credential's own dict (and so in credentials.json, as kiro.rs writes them);
the reset date stays in memory, since a date written to the file would go stale.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..kiro.client import KiroHttp, UpstreamStatus, get_usage_limits
from .credential import Credential, format_expiry, parse_expiry
from .health import Health, next_month_utc
from .lease import Lease, Leases

log = logging.getLogger("kiro_gateway.pool.usage")

__all__ = ["AccountUsage", "UsageTracker", "parse_usage", "Route", "Switch", "TokenSource"]

# (base URL, profile ARN, kiroVersion) for an account's calls besides chat (pool/facts.py's answer).
Route = Callable[[Lease], Awaitable[tuple[str, str | None, str]]]
# Whether, after a failed call, the account moved hosts (so the call is worth making again).
Switch = Callable[[Lease, Exception], Awaitable[bool]]
# A bearer token for a credential: (credential, force) -> token.
TokenSource = Callable[[Credential, bool], Awaitable[str]]


def _num(d: dict[str, Any], *keys: str) -> float:
    """The first of `keys` that holds a number (the *WithPrecision fields come first)."""
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                continue
    return 0.0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _active(status: Any) -> bool:
    return isinstance(status, str) and status.upper() == "ACTIVE"


@dataclass(slots=True)
class AccountUsage:
    limit: float = 0.0
    used: float = 0.0
    remaining: float = 0.0
    percentage: float = 0.0
    next_reset: float | None = None  # epoch seconds
    days_until_reset: int | None = None
    subscription_title: str | None = None
    subscription_type: str | None = None
    email: str | None = None
    free_trial: dict[str, Any] | None = None
    bonus_limit: float = 0.0
    bonus_used: float = 0.0
    overage_status: str | None = None
    fetched_at: float = field(default_factory=time.time)

    @property
    def free_tier(self) -> bool:
        return "FREE" in (self.subscription_title or "").upper()

    def as_dict(self) -> dict[str, Any]:
        """The admin API's view (camelCase, like kiro.rs's balance answer)."""
        return {
            "subscriptionTitle": self.subscription_title,
            "subscriptionType": self.subscription_type,
            "email": self.email,
            "usageLimit": self.limit,
            "currentUsage": self.used,
            "remaining": self.remaining,
            "usagePercentage": self.percentage,
            "nextResetAt": format_expiry(self.next_reset) if self.next_reset else None,
            "daysUntilReset": self.days_until_reset,
            "freeTrial": self.free_trial,
            "bonusLimit": self.bonus_limit,
            "bonusUsage": self.bonus_used,
            "overageStatus": self.overage_status,
            "fetchedAt": format_expiry(self.fetched_at),
        }


def parse_usage(data: dict[str, Any], now: float | None = None) -> AccountUsage:
    """kiro.rs's arithmetic: limit = base + active free trial + active bonuses, used likewise;
    remaining = max(0, limit − used); percentage = min(100, used / limit · 100)."""
    breakdowns = [b for b in data.get("usageBreakdownList") or [] if isinstance(b, dict)]
    # K2A picks the CREDIT breakdown, kiro.rs the first: the CREDIT one when there is one.
    b = next((x for x in breakdowns if str(x.get("resourceType", "")).upper() == "CREDIT"),
             breakdowns[0] if breakdowns else {})
    limit = _num(b, "usageLimitWithPrecision", "usageLimit")
    used = _num(b, "currentUsageWithPrecision", "currentUsage")
    trial = b.get("freeTrialInfo") if isinstance(b.get("freeTrialInfo"), dict) else None
    free_trial = None
    if trial is not None:
        t_limit = _num(trial, "usageLimitWithPrecision", "usageLimit")
        t_used = _num(trial, "currentUsageWithPrecision", "currentUsage")
        expiry = parse_expiry(trial.get("freeTrialExpiry"))
        free_trial = {"status": trial.get("freeTrialStatus"), "usageLimit": t_limit, "currentUsage": t_used,
                      "expiresAt": format_expiry(expiry) if expiry else None}
        if _active(trial.get("freeTrialStatus")):
            limit += t_limit
            used += t_used
    bonus_limit = bonus_used = 0.0
    for bonus in b.get("bonuses") or []:
        if isinstance(bonus, dict) and _active(bonus.get("status")):
            bonus_limit += _num(bonus, "usageLimitWithPrecision", "usageLimit")
            bonus_used += _num(bonus, "currentUsageWithPrecision", "currentUsage")
    limit += bonus_limit
    used += bonus_used
    percentage = min(100.0, used / limit * 100.0) if limit > 0 else 0.0
    sub = _dict(data.get("subscriptionInfo"))
    user = _dict(data.get("userInfo"))
    overage = _dict(data.get("overageConfiguration"))
    days = data.get("daysUntilReset")
    return AccountUsage(
        limit=limit, used=used, remaining=max(0.0, limit - used), percentage=round(percentage, 2),
        next_reset=parse_expiry(b.get("nextDateReset")) or parse_expiry(data.get("nextDateReset")),
        days_until_reset=int(days) if isinstance(days, (int, float)) and not isinstance(days, bool) else None,
        subscription_title=sub.get("subscriptionTitle") if isinstance(sub.get("subscriptionTitle"), str) else None,
        subscription_type=sub.get("type") if isinstance(sub.get("type"), str) else None,
        email=user.get("email") if isinstance(user.get("email"), str) and user.get("email") else None,
        free_trial=free_trial, bonus_limit=bonus_limit, bonus_used=bonus_used,
        overage_status=overage.get("overageStatus") if isinstance(overage.get("overageStatus"), str) else None,
        fetched_at=now or time.time(),
    )


class UsageTracker:
    """Fetches and caches usage per credential (`usage_cache_seconds`, one fetch at a time each).

    It gets its collaborators at construction: bearer tokens (`tokens`), lease building, where
    health lives and how to mark it changed (`touch(id, urgent)`), and how to write the file back
    when an account's title or email changed. `route` and `switch` are set later, by the upstream
    that knows Kiro's hosts; without them the configured host serves."""

    def __init__(self, settings: Settings, http: KiroHttp, leases: Leases, tokens: TokenSource,
                 health: Callable[[str], Health | None], touch: Callable[[str, bool], None],
                 save: Callable[[], Awaitable[None]]) -> None:
        self.settings = settings
        self.http = http
        self.leases = leases
        self._tokens = tokens
        self._health = health
        self._touch = touch
        self._save = save
        self.route: Route | None = None
        self.switch: Switch | None = None
        self._cache: dict[str, AccountUsage] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.fetch_count = 0

    def cached(self, cred: Credential) -> AccountUsage | None:
        return self._cache.get(cred.id)

    def forget(self, cred_id: str) -> None:
        self._cache.pop(cred_id, None)
        self._locks.pop(cred_id, None)

    def reset_at(self, cred: Credential, now: float | None = None) -> float | None:
        """When the monthly quota comes back, if known and still ahead."""
        now = now or time.time()
        u = self._cache.get(cred.id)
        for when in (u.next_reset if u else None, cred.next_date_reset):
            if when and when > now:
                return when
        return None

    async def get(self, cred: Credential, force: bool = False) -> AccountUsage:
        """The credential's usage, from the cache unless stale or `force`d. Raises GatewayError
        (Kiro's answer) or RefreshError (no token could be had)."""
        ttl = self.settings.usage_cache_seconds
        u = self._cache.get(cred.id)
        if u is not None and not force and time.time() - u.fetched_at < ttl:
            return u
        async with self._locks.setdefault(cred.id, asyncio.Lock()):
            u2 = self._cache.get(cred.id)
            if u2 is not None and u2 is not u and time.time() - u2.fetched_at < ttl:
                return u2  # someone fetched it while we waited
            usage = parse_usage(await self._fetch(cred))
            self._cache[cred.id] = usage
        await self._remember(cred, usage)
        return usage

    async def _fetch(self, cred: Credential) -> dict[str, Any]:
        token = await self._tokens(cred, False)
        for attempt in (0, 1):
            lease = self.leases.make(cred, token)
            self.fetch_count += 1
            base, arn, version = lease.api_base, cred.profile_arn, self.settings.kiro_version
            if self.route is not None:  # the host that serves the account, its ARN (pool/facts.py)
                base, arn, version = await self.route(lease)
            try:
                return await get_usage_limits(self.http, base, token, version, lease.machine_id,
                                              arn, lease.api_key_auth, lease.proxy)
            except UpstreamStatus as e:
                if not attempt and self.switch is not None and await self.switch(lease, e):
                    continue  # the branded host wants an ARN this account lacks: the legacy host
                # A token revoked early: refresh once and ask again, as chat requests do.
                if attempt or e.reason != "BEARER_INVALID" or not cred.refresh_token:
                    raise
                token = await self._tokens(cred, True)
        raise AssertionError("unreachable")

    async def _remember(self, cred: Credential, usage: AccountUsage) -> None:
        """Keep title and email in the credential (the pool's can_serve reads the title)."""
        changed = cred.set_subscription(usage.subscription_title, usage.email)
        h = self._health(cred.id)
        if h is not None and h.exhausted_until and usage.next_reset and usage.next_reset > time.time():
            h.exhausted_until = usage.next_reset  # the real reset date beats a guessed one
            self._touch(cred.id, True)
        if changed:
            await self._save()

    def refresh_soon(self, cred: Credential, exhausted_check: bool = False) -> None:
        """Fetch in the background (e.g. after a 402, to learn the real reset date). With
        `exhausted_check` (after a throttle without a reason), an account whose credits are all
        used is marked exhausted until its reset: Kiro has answered that way."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._quiet(cred, exhausted_check))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quiet(self, cred: Credential, exhausted_check: bool = False) -> None:
        try:
            usage = await self.get(cred, force=True)
        except Exception as e:  # noqa: BLE001 - best effort; the pool already has a fallback date
            log.info("usage limits of credential #%s not fetched: %s", cred.id, type(e).__name__)
            return
        h = self._health(cred.id)
        if exhausted_check and h is not None and usage.limit > 0 and usage.remaining <= 0 \
                and (usage.overage_status or "").upper() != "ENABLED":
            h.exhaust(usage.next_reset if usage.next_reset and usage.next_reset > time.time() else next_month_utc())
            self._touch(cred.id, True)
            log.warning("credential #%s: Kiro's throttle meant its credits are used up; exhausted until the reset",
                        cred.id)
