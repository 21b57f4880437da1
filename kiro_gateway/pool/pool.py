"""The credential pool: which account serves a request, with a fresh token.

It picks a credential (strategy, stickiness, health — see selection.py and health.py), refreshes
its token when due (one refresh at a time per credential, however many requests wait), records
how each attempt went, and writes refreshed tokens back to the file atomically, in its own shape.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..config import Settings
from ..conversation import GatewayError
from ..files import read_json, write_json_atomic
from ..kiro.auth import RefreshError, refresh_idc, refresh_social
from ..kiro.client import KiroHttp
from ..kiro.identity import machine_id_for
from .credential import Credential, parse_expiry
from .health import ACTIVE, COOLDOWN, EXHAUSTED, Health, next_month_utc
from .selection import Sticky, order_candidates

log = logging.getLogger("kiro_gateway.pool")

__all__ = ["CredentialPool", "Lease", "load_credentials"]


@dataclass(slots=True)
class Lease:
    credential: Credential
    token: str
    machine_id: str
    api_base: str
    proxy: str | None
    api_key_auth: bool


def load_credentials(path: Path) -> tuple[list[Credential], bool]:
    """(credentials, single_object_shape). A missing file is an empty pool."""
    if not path.exists():
        return [], False
    try:
        data = read_json(path)
    except (OSError, orjson.JSONDecodeError) as e:
        raise GatewayError("internal", f"{path}: cannot read credentials ({e})") from e
    if isinstance(data, dict):
        return [Credential(data, 0)], True
    if isinstance(data, list):
        return [Credential(d, i) for i, d in enumerate(data) if isinstance(d, dict)], False
    raise GatewayError("internal", f"{path}: credentials must be an object or an array")


class CredentialPool:
    def __init__(self, settings: Settings, path: Path | None, http: KiroHttp) -> None:
        self.settings = settings
        self.path = path
        self.http = http
        self.credentials, self.single = load_credentials(path) if path else ([], False)
        self.health: dict[str, Health] = {c.id: Health() for c in self.credentials}
        self.sticky = Sticky(settings.sticky_seconds)
        self._locks: dict[str, asyncio.Lock] = {}
        self._write_lock = asyncio.Lock()
        self._rr = 0
        self.refresh_count = 0

    # -- selection -------------------------------------------------------------------------------

    def candidates(self) -> list[Credential]:
        """Credentials that exist and are not switched off (whatever their health)."""
        return [c for c in self.credentials
                if not c.disabled and (c.refresh_token or c.access_token or c.api_key)]

    def status(self, cred: Credential) -> str:
        return self.health[cred.id].status(cred.disabled)

    @staticmethod
    def can_serve(cred: Credential, model_id: str | None) -> bool:
        title = str(cred.raw.get("subscriptionTitle") or "").upper()
        return not (model_id and "opus" in model_id and "FREE" in title)

    def pick(self, model_id: str | None = None, session: str | None = None,
             exclude: frozenset[str] | set[str] = frozenset()) -> Credential:
        """The credential to try next; raises when none can serve."""
        now = time.time()
        pool = [c for c in self.candidates() if c.id not in exclude and self.can_serve(c, model_id)]
        if not pool:
            if not self.candidates():
                raise GatewayError("upstream", "No usable Kiro credential is configured: add one to "
                                   f"{self.path or 'credentials.json'} (or run `kiro-gateway import`).", 503)
            raise GatewayError("overloaded", "No Kiro credential is left to try for this request.", 503)
        active = [c for c in pool if self.health[c.id].status(False, now) == ACTIVE]
        if session and (sid := self.sticky.get(session, now)) and any(c.id == sid for c in active):
            return next(c for c in active if c.id == sid)
        if active:
            self._rr += 1
            return order_candidates(active, self.health, self.settings.load_balancing, self._rr)[0]
        # Nobody is active: never black the whole pool out — the soonest-ready one serves.
        waiting = [c for c in pool if self.health[c.id].status(False, now) in (COOLDOWN, EXHAUSTED)
                   or self.health[c.id].unhealthy_until > now]
        if waiting:
            return min(waiting, key=lambda c: (self.health[c.id].ready_at(), c.priority))
        raise GatewayError("permission", "Every Kiro credential is unhealthy: "
                           + "; ".join(f"#{c.id}: {self.health[c.id].reason}" for c in pool), 503)

    async def acquire(self, model_id: str | None = None, session: str | None = None,
                      exclude: frozenset[str] | set[str] = frozenset()) -> Lease:
        """The next credential with a fresh token. Dead refresh tokens are skipped (and disabled)."""
        skip = set(exclude)
        while True:
            cred = self.pick(model_id, session, skip)
            try:
                token = await self.token_for(cred)
            except RefreshError:
                skip.add(cred.id)
                continue
            if session:
                self.sticky.put(session, cred.id)
            return self._lease(cred, token)

    def _lease(self, cred: Credential, token: str) -> Lease:
        s = self.settings
        mid = machine_id_for(cred.machine_id or s.machine_id, cred.refresh_token, cred.api_key, cred.id)
        proxy = cred.raw.get("proxyUrl") or s.proxy_url
        if proxy == "direct":
            proxy = None
        return Lease(cred, token, mid, s.url("api_base_url", cred.region(s.region)), proxy,
                     cred.auth_method == "api_key")

    # -- outcomes --------------------------------------------------------------------------------

    def begin(self, lease: Lease) -> None:
        self.health[lease.credential.id].in_flight += 1

    def end(self, lease: Lease) -> None:
        h = self.health[lease.credential.id]
        h.in_flight = max(0, h.in_flight - 1)

    def succeeded(self, lease: Lease) -> None:
        self.health[lease.credential.id].succeeded(time.time())

    def failed(self, lease: Lease, kind: str, reason: str | None, message: str) -> None:
        """Record an upstream failure; throttling, quota and suspension change the state."""
        cred, now = lease.credential, time.time()
        h = self.health[cred.id]
        if reason == "MONTHLY_REQUEST_COUNT":
            until = parse_expiry(cred.raw.get("nextDateReset")) or next_month_utc(now)
            h.exhaust(until)
        elif kind == "rate_limit":
            h.cool_down(now, self.settings.cooldown_seconds)
        elif reason == "TEMPORARILY_SUSPENDED" or kind == "permission":
            h.suspend(message[:200])
        elif kind in ("upstream", "overloaded", "timeout"):
            h.transient(now)  # Kiro's trouble, not the account's: counted, no penalty
        else:
            h.failed(now, self.settings.failure_limit, self.settings.unhealthy_seconds)
        if h.status(cred.disabled, now) != ACTIVE:
            self.sticky.drop(cred.id)

    async def token_for(self, cred: Credential, force: bool = False) -> str:
        """A bearer token for `cred`, refreshed first when due (or when `force`d)."""
        margin = self.settings.refresh_before
        if not force and (token := cred.usable_token(margin=margin)):
            return token
        seen = cred.access_token
        async with self._locks.setdefault(cred.id, asyncio.Lock()):
            # Single flight: whoever waited on the lock uses the token the first one fetched.
            if cred.access_token != seen and (token := cred.usable_token(margin=0)):
                return token
            if not force and (token := cred.usable_token(margin=margin)):
                return token
            if not cred.refresh_token:
                if cred.access_token and not force:
                    return cred.access_token  # nothing to refresh with: try what we have
                raise RefreshError("credential has no refresh token", permanent=True)
            try:
                await self._refresh(cred)
            except RefreshError as e:
                await self._refresh_failed(cred, e)
                raise
            self.health[cred.id].refresh_failures = 0
            return cred.access_token or ""

    async def _refresh_failed(self, cred: Credential, err: RefreshError) -> None:
        h = self.health[cred.id]
        h.refresh_failures += 1
        if err.permanent:
            reason = "InvalidRefreshToken"
        elif h.refresh_failures >= self.settings.refresh_failure_limit:
            reason = "TooManyRefreshFailures"
        else:
            return
        cred.raw["disabled"] = True
        cred.raw["disabledReason"] = reason
        self.sticky.drop(cred.id)
        log.warning("credential #%s disabled: %s (%s)", cred.id, reason, err)
        await self.save()

    async def _refresh(self, cred: Credential) -> None:
        s = self.settings
        mid = machine_id_for(cred.machine_id or s.machine_id, cred.refresh_token, cred.api_key, cred.id)
        region = cred.auth_region(s.region)
        proxy = cred.raw.get("proxyUrl") or s.proxy_url
        proxy = None if proxy == "direct" else proxy
        self.refresh_count += 1
        if cred.auth_method == "idc":
            res = await refresh_idc(self.http.session, s.url("oidc_base_url", region), cred.refresh_token or "",
                                    cred.client_id or "", cred.client_secret or "", mid, proxy)
        else:
            res = await refresh_social(self.http.session, s.url("auth_base_url", region),
                                       cred.refresh_token or "", s.kiro_version, mid, proxy)
        cred.apply_refresh(res.access_token, res.refresh_token, res.expires_in, res.profile_arn)
        await self.save()

    async def save(self) -> None:
        if not self.path:
            return
        data: Any = self.credentials[0].raw if self.single and self.credentials else [c.raw for c in self.credentials]
        async with self._write_lock:
            await asyncio.to_thread(write_json_atomic, self.path, data)
