"""Tokens across gateway processes sharing a state store (team mode).

When a token is due, each process first looks in the store: another may have refreshed already.
If not, it takes the store's lock for that credential; whoever gets it first refreshes and stores
the new tokens before letting go, and every other process, once it has the lock, finds them and
refreshes nothing. So N processes × M waiting requests cost Kiro one refresh. A refresh also
announces itself, and processes adopt the newer tokens before they even need them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from ..state.base import LockTimeout, StoreError, TokenStore
from .credential import Credential, parse_expiry
from .writeback import TOKEN_KEYS

if TYPE_CHECKING:
    from .pool import CredentialPool

log = logging.getLogger("kiro_gateway.pool")

__all__ = ["SharedTokens", "TOKEN_FIELDS"]

TOKEN_FIELDS = ("accessToken", "refreshToken", "expiresAt", "profileArn")
_LOCK_TTL = 60.0  # longer than a refresh can take (connect + read timeouts)


class SharedTokens:
    def __init__(self, pool: "CredentialPool") -> None:
        self.pool = pool

    async def refresh(self, cred: Credential, seen: str | None, force: bool, margin: float) -> str:
        """A token for `cred` that is not `seen` (force) or good for `margin` s, refreshed by
        exactly one process. Called under the pool's per-credential lock."""
        pool = self.pool
        if token := await self._adopt(cred, seen, force, margin):
            return token
        try:
            async with pool.store.lock(f"refresh:{cred.id}", _LOCK_TTL, _LOCK_TTL):
                if token := await self._adopt(cred, seen, force, margin):
                    return token
                await pool._refresh_checked(cred)
                return cred.access_token or ""
        except (LockTimeout, StoreError) as e:
            # The store is unreachable or a holder is stuck: a refresh of our own beats failing requests.
            log.warning("refresh of credential #%s without the shared lock (%s)", cred.id, e)
        await pool._refresh_checked(cred)
        return cred.access_token or ""

    async def share(self, cred: Credential) -> None:
        """Store freshly refreshed tokens for the other processes (before the lock is let go)."""
        store = self.pool.store
        if not isinstance(store, TokenStore):
            return
        with contextlib.suppress(StoreError):
            await store.put_tokens(cred.id, {k: cred.raw.get(k) for k in TOKEN_FIELDS})

    async def _adopt(self, cred: Credential, seen: str | None, force: bool, margin: float) -> str | None:
        """The token another process stored, if it is newer than ours and good enough."""
        store = self.pool.store
        if not isinstance(store, TokenStore):
            return None
        try:
            tokens = await store.get_tokens(cred.id)
        except StoreError:
            return None
        if not tokens or not tokens.get("accessToken"):
            return None
        expires = parse_expiry(tokens.get("expiresAt")) or 0.0
        if expires <= (cred.expires_at or 0.0) and tokens["accessToken"] != cred.access_token:
            return None  # older than what we hold
        if tokens["accessToken"] == seen or expires - time.time() < (0 if force else margin):
            return None
        apply_tokens(cred, tokens)
        return cred.access_token

    async def adopt_stored(self, cid: str) -> None:
        """Another process refreshed `cid`: take its tokens when they are newer than ours."""
        cred = self.pool.get(cid)
        if cred is None or cred.auth_method == "api_key":
            return
        store = self.pool.store
        if not isinstance(store, TokenStore):
            return
        try:
            tokens = await store.get_tokens(cid)
        except StoreError:
            return
        if tokens and tokens.get("accessToken") and \
                (parse_expiry(tokens.get("expiresAt")) or 0.0) > (cred.expires_at or 0.0):
            apply_tokens(cred, tokens)


def apply_tokens(cred: Credential, tokens: dict[str, Any]) -> None:
    for k in TOKEN_KEYS:
        if k not in ("refreshToken", "refresh_token") or tokens.get("refreshToken"):
            cred.raw.pop(k, None)
    cred.raw["accessToken"] = tokens["accessToken"]
    if tokens.get("refreshToken"):
        cred.raw["refreshToken"] = tokens["refreshToken"]
    if tokens.get("expiresAt"):
        cred.raw["expiresAt"] = tokens["expiresAt"]
    if tokens.get("profileArn") and not cred.profile_arn:
        cred.raw["profileArn"] = tokens["profileArn"]
