"""The one authority over every credential's OAuth tokens.

It hands out a bearer token that is good for long enough, refreshing it first when due — one
refresh at a time per credential however many requests wait (single flight). In team mode (a
shared state store) it also coordinates with the other gateway processes: before refreshing it
looks in the store, since another may have refreshed already; if not, it takes the store's lock
for that credential, and whoever holds it first refreshes and stores the new tokens before letting
go, so every other process finds them and refreshes nothing. N processes × M waiting requests cost
Kiro one refresh. A refresh also announces itself, and processes adopt newer tokens before they
need them (`adopt_stored`).

It keeps the refresh-failure count in the credential's health, and switches off a credential whose
refresh token is dead. It knows nothing of the pool: what it needs comes in at construction —
where health lives, how to mark it changed, how to write the file back, and whom to tell when a
credential has been switched off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import Settings
from ..core.conversation import GatewayError
from ..kiro.auth import RefreshError, refresh_idc, refresh_social
from ..kiro.client import KiroHttp
from ..state.base import LockTimeout, StateStore, StoreError, TokenStore
from .credential import Credential, parse_expiry
from .health import Health
from .lease import Leases

log = logging.getLogger("kiro_gateway.pool")

__all__ = ["TokenAuthority"]

_LOCK_TTL = 60.0  # longer than a refresh can take (connect + read timeouts)


class TokenAuthority:
    def __init__(self, settings: Settings, http: KiroHttp, store: StateStore, leases: Leases,
                 health: Callable[[str], Health], touch: Callable[[str], None],
                 save: Callable[[], Awaitable[None]], disabled: Callable[[Credential], None]) -> None:
        """`health(id)` gives a credential's health (a throwaway one when it is gone), `touch(id)`
        marks it changed for the state store, `save()` writes the credentials file back, and
        `disabled(cred)` is told after a dead refresh token switched a credential off."""
        self.settings = settings
        self.http = http
        self.store = store
        self.leases = leases
        self._health = health
        self._touch = touch
        self._save = save
        self._disabled = disabled
        self._locks: dict[str, asyncio.Lock] = {}
        self.refresh_count = 0

    def forget(self, cid: str) -> None:
        self._locks.pop(cid, None)

    async def token_for(self, cred: Credential, force: bool = False, margin: float | None = None) -> str:
        """A bearer token for `cred`, refreshed first when due within `margin` s (default
        `refreshBefore`), or when `force`d (the token we had was refused)."""
        margin = self.settings.refresh_before if margin is None else margin
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
            if self.store.shared:
                return await self._shared_refresh(cred, seen, force, margin)
            await self._refresh_checked(cred)
            return cred.access_token or ""

    async def probe(self, cred: Credential) -> None:
        """Refresh a credential not in the pool yet, writing nothing: proves its token works.
        Raises RefreshError when it does not."""
        await self._refresh(cred, persist=False)

    # -- one refresh -----------------------------------------------------------------------------

    async def _refresh_checked(self, cred: Credential) -> None:
        try:
            await self._refresh(cred)
        except RefreshError as e:
            await self._refresh_failed(cred, e)
            raise
        h = self._health(cred.id)
        if h.refresh_failures:
            h.refresh_failures = 0
            self._touch(cred.id)

    async def _refresh_failed(self, cred: Credential, err: RefreshError) -> None:
        h = self._health(cred.id)
        h.refresh_failures += 1
        self._touch(cred.id)
        if err.permanent:
            reason = "InvalidRefreshToken"
        elif err.status not in (400, 401, 403):
            return  # network, proxy (407), throttling or 5xx: not the account's fault, never disables it
        elif h.refresh_failures >= self.settings.refresh_failure_limit:
            reason = "TooManyRefreshFailures"
        else:
            return
        cred.set_disabled(True, reason)
        self._disabled(cred)
        log.warning("credential #%s disabled: %s (%s)", cred.id, reason, err)
        await self._save()

    async def _refresh(self, cred: Credential, persist: bool = True) -> None:
        s = self.settings
        mid = self.leases.machine_id(cred)
        region = cred.auth_region(s.region)
        try:
            session, via = self.http.via(self.leases.proxy_for(cred))
        except GatewayError as e:
            raise RefreshError(e.message) from None
        self.refresh_count += 1
        if cred.auth_method == "idc":
            res = await refresh_idc(session, s.url("oidc_base_url", region), cred.refresh_token or "",
                                    cred.client_id or "", cred.client_secret or "", mid, via, s.refresh_timeout)
        else:
            res = await refresh_social(session, s.url("auth_base_url", region),
                                       cred.refresh_token or "", s.kiro_version, mid, via, s.refresh_timeout)
        cred.apply_refresh(res.access_token, res.refresh_token, res.expires_in, res.profile_arn)
        if persist:
            # Kiro may have rotated the refresh token: the old one is spent, so the new one goes to
            # disk (fsynced) first, then to the store, before the lock is let go and anything uses it.
            await self._save()
            if self.store.shared:  # the waiting processes read it once they hold the lock
                await self._share(cred)

    # -- team mode -------------------------------------------------------------------------------

    async def _shared_refresh(self, cred: Credential, seen: str | None, force: bool, margin: float) -> str:
        """A token for `cred` that is not `seen` (force) or good for `margin` s, refreshed by
        exactly one process. Called under this process's lock for the credential."""
        if token := await self._adopt(cred, seen, force, margin):
            return token
        try:
            async with self.store.lock(f"refresh:{cred.id}", _LOCK_TTL, _LOCK_TTL):
                if token := await self._adopt(cred, seen, force, margin):
                    return token
                await self._refresh_checked(cred)
                return cred.access_token or ""
        except (LockTimeout, StoreError) as e:
            # The store is unreachable or a holder is stuck: a refresh of our own beats failing requests.
            log.warning("refresh of credential #%s without the shared lock (%s)", cred.id, e)
        await self._refresh_checked(cred)
        return cred.access_token or ""

    async def _share(self, cred: Credential) -> None:
        """Store freshly refreshed tokens for the other processes (before the lock is let go)."""
        store = self.store
        if not isinstance(store, TokenStore):
            return
        try:
            await store.put_tokens(cred.id, cred.token_fields())
        except StoreError:
            pass

    async def _stored(self, cid: str) -> dict[str, Any] | None:
        store = self.store
        if not isinstance(store, TokenStore):
            return None
        try:
            tokens = await store.get_tokens(cid)
        except StoreError:
            return None
        return tokens if tokens and tokens.get("accessToken") else None

    async def _adopt(self, cred: Credential, seen: str | None, force: bool, margin: float) -> str | None:
        """The token another process stored, if it is newer than ours and good enough."""
        tokens = await self._stored(cred.id)
        if tokens is None:
            return None
        expires = parse_expiry(tokens.get("expiresAt")) or 0.0
        if expires <= (cred.expires_at or 0.0) and tokens["accessToken"] != cred.access_token:
            return None  # older than what we hold
        if tokens["accessToken"] == seen or expires - time.time() < (0 if force else margin):
            return None
        cred.apply_tokens(tokens)
        return cred.access_token

    async def adopt_stored(self, cred: Credential) -> None:
        """Another process refreshed `cred`: take its tokens when they are newer than ours."""
        if cred.auth_method == "api_key":
            return
        tokens = await self._stored(cred.id)
        if tokens is not None and (parse_expiry(tokens.get("expiresAt")) or 0.0) > (cred.expires_at or 0.0):
            cred.apply_tokens(tokens)
