"""The credential pool: which account serves a request, with a fresh token.

It picks a credential (strategy, stickiness, health — see selection.py and health.py), refreshes
its token when due (one refresh at a time per credential, however many requests wait), records
how each attempt went, and writes refreshed tokens back to the file atomically, in its own shape.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
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
from ..kiro.client import KiroHttp, Proxy, ProxyError
from ..kiro.identity import machine_id_for
from .credential import Credential
from .health import ACTIVE, COOLDOWN, EXHAUSTED, Health, next_month_utc
from .selection import Sticky, order_candidates
from .usage import UsageTracker

log = logging.getLogger("kiro_gateway.pool")

__all__ = ["CredentialPool", "Lease", "load_credentials"]


@dataclass(slots=True)
class Lease:
    credential: Credential
    token: str
    machine_id: str
    api_base: str
    proxy: Proxy | None
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
        self.usage = UsageTracker(self)

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
            try:
                lease = self._lease(cred, token)
            except GatewayError as e:  # an unusable proxyUrl: this credential cannot be reached
                log.warning("%s", e.message)
                skip.add(cred.id)
                continue
            if session:
                self.sticky.put(session, cred.id)
            return lease

    def _lease(self, cred: Credential, token: str) -> Lease:
        s = self.settings
        mid = machine_id_for(cred.machine_id or s.machine_id, cred.refresh_token, cred.api_key, cred.id)
        return Lease(cred, token, mid, s.url("api_base_url", cred.region(s.region)), self.proxy_for(cred),
                     cred.auth_method == "api_key")

    def proxy_for(self, cred: Credential) -> Proxy | None:
        """The credential's own proxy (`direct` = none), else the global one."""
        s = self.settings
        url, user, pw = cred.raw.get("proxyUrl"), cred.raw.get("proxyUsername"), cred.raw.get("proxyPassword")
        if not (isinstance(url, str) and url.strip()):
            url, user, pw = s.proxy_url, s.proxy_username, s.proxy_password
        if not url or url.strip().lower() == "direct":
            return None
        try:
            return Proxy.parse(url, user or None, pw or None)
        except ProxyError as e:
            raise GatewayError("internal", f"Credential #{cred.id}: {e}.") from None

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
            until = self.usage.reset_at(cred, now)
            h.exhaust(until or next_month_utc(now))
            if until is None:
                self.usage.refresh_soon(cred)  # learn the real reset date
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
        elif err.status not in (400, 401, 403):
            return  # network, proxy (407), throttling or 5xx: not the account's fault, never disables it
        elif h.refresh_failures >= self.settings.refresh_failure_limit:
            reason = "TooManyRefreshFailures"
        else:
            return
        cred.raw["disabled"] = True
        cred.raw["disabledReason"] = reason
        self.sticky.drop(cred.id)
        log.warning("credential #%s disabled: %s (%s)", cred.id, reason, err)
        await self.save()

    async def _refresh(self, cred: Credential, persist: bool = True) -> None:
        s = self.settings
        mid = machine_id_for(cred.machine_id or s.machine_id, cred.refresh_token, cred.api_key, cred.id)
        region = cred.auth_region(s.region)
        try:
            session, via = self.http.via(self.proxy_for(cred))
        except GatewayError as e:
            raise RefreshError(e.message) from None
        self.refresh_count += 1
        if cred.auth_method == "idc":
            res = await refresh_idc(session, s.url("oidc_base_url", region), cred.refresh_token or "",
                                    cred.client_id or "", cred.client_secret or "", mid, via)
        else:
            res = await refresh_social(session, s.url("auth_base_url", region),
                                       cred.refresh_token or "", s.kiro_version, mid, via)
        cred.apply_refresh(res.access_token, res.refresh_token, res.expires_in, res.profile_arn)
        if persist:
            await self.save()

    # -- changes by hand (admin API, import) -----------------------------------------------------

    def get(self, cred_id: str | int) -> Credential | None:
        return next((c for c in self.credentials if c.id == str(cred_id)), None)

    def current_id(self) -> str | None:
        """The credential a session-less request would get now (without advancing round-robin)."""
        rr = self._rr
        try:
            return self.pick().id
        except GatewayError:
            return None
        finally:
            self._rr = rr

    def has_refresh_token(self, token: str) -> bool:
        """Duplicate check by sha256, so tokens are compared without timing leaks."""
        digest = hashlib.sha256(token.encode()).digest()
        return any(c.refresh_token and hmac.compare_digest(digest, hashlib.sha256(c.refresh_token.encode()).digest())
                   for c in self.credentials)

    def _pin_ids(self) -> None:
        """Write each credential's id into its dict: ids taken from positions would shift on delete."""
        for c in self.credentials:
            if c.raw.get("id") in (None, ""):
                c.raw["id"] = int(c.id) if c.id.isdigit() else c.id

    async def add(self, *raws: dict[str, Any]) -> list[Credential]:
        """Append credentials with fresh ids (max numeric id + 1) and persist them."""
        self._pin_ids()
        added = []
        for raw in raws:
            raw["id"] = max((int(c.id) for c in self.credentials if c.id.isdigit()), default=0) + 1
            cred = Credential(raw, len(self.credentials))
            self.credentials.append(cred)
            self.health[cred.id] = Health()
            added.append(cred)
        if added and self.single:
            self.single = False  # more than one credential: the file becomes an array
        await self.save()
        return added

    async def remove(self, cred: Credential) -> None:
        if not cred.disabled:
            raise ValueError(f"Only a disabled credential can be deleted: disable #{cred.id} first.")
        self._pin_ids()
        self.credentials.remove(cred)
        for i, c in enumerate(self.credentials):
            c.index = i
        self.health.pop(cred.id, None)
        self._locks.pop(cred.id, None)
        self.usage.forget(cred.id)
        self.sticky.drop(cred.id)
        if self.single:
            self.single = False
        await self.save()

    async def set_disabled(self, cred: Credential, disabled: bool) -> None:
        cred.raw["disabled"] = disabled
        if disabled:
            cred.raw["disabledReason"] = "Manual"
            self.sticky.drop(cred.id)
        else:
            cred.raw.pop("disabledReason", None)
            self.health[cred.id].reset()
        await self.save()

    async def set_priority(self, cred: Credential, priority: int) -> None:
        cred.raw["priority"] = priority
        self.sticky.clear()  # sessions pick again under the new order
        await self.save()

    async def reset(self, cred: Credential) -> None:
        """Forget failures and health, and enable."""
        h = self.health[cred.id]
        h.reset()
        h.failure_count = 0
        cred.raw["disabled"] = False
        cred.raw.pop("disabledReason", None)
        await self.save()

    async def save(self) -> None:
        if not self.path:
            return
        data: Any = self.credentials[0].raw if self.single and self.credentials else [c.raw for c in self.credentials]
        async with self._write_lock:
            await asyncio.to_thread(write_json_atomic, self.path, data)
