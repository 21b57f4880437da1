"""The credential pool: which account serves a request, with a fresh token.

It picks a credential (strategy, stickiness, health — see selection.py and health.py), paces it
(pacing.py), refreshes its token when due (one refresh at a time per credential, however many
requests wait — across processes too, with a shared state store), records how each attempt went,
and writes refreshed tokens back to the file atomically, in its own shape, merged with what the
file holds meanwhile (writeback.py). Selection reads memory only; sync.py keeps that memory and
the state store in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..config import Settings
from ..core.conversation import GatewayError
from ..util.files import read_json, remove_stale_temps
from ..kiro.auth import RefreshError, refresh_idc, refresh_social
from ..kiro.client import KiroHttp, Proxy, ProxyError
from ..kiro.identity import machine_id_for
from ..observe.record import CURRENT
from ..state.base import Events, LockTimeout, SessionStore, StateStore, StoreError
from ..state.local import LocalCoordination
from . import writeback
from .alerts import Alerts
from .credential import Credential
from .health import ACTIVE, COOLDOWN, EXHAUSTED, Health, next_month_utc
from .interval import MinInterval
from .pacing import Pacer
from .selection import Sticky, order_candidates, ramp_offset
from .sync import PoolSync
from .oauth import SharedTokens
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
    slot: str | None = None  # the pacing slot it holds, given back when it ends


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


_FILE_LOCK_TTL = 30.0


class _NoStore(LocalCoordination):
    """Stand-in until a real store is attached (a pool used without the app)."""

    shared = False


class CredentialPool:
    def __init__(self, settings: Settings, path: Path | None, http: KiroHttp,
                 store: StateStore | None = None) -> None:
        self.settings = settings
        self.path = path
        self.http = http
        self.credentials, self.single = load_credentials(path) if path else ([], False)
        if path:
            removed = remove_stale_temps(path)
            if removed:
                log.info("removed %d temp file(s) an interrupted write left beside %s", removed, path.name)
        found = writeback.read_file(path) if path else None
        # The file as last read or written: the base of the three-way merges (writeback.py).
        self._file_base: list[dict[str, Any]] = [dict(c.raw) for c in self.credentials]
        self._file_digest = found.digest if found else None
        self.health: dict[str, Health] = {c.id: Health() for c in self.credentials}
        self.sticky = Sticky(settings.sticky_seconds)
        self._locks: dict[str, asyncio.Lock] = {}
        self._write_lock = asyncio.Lock()
        self._rr = 0
        self.refresh_count = 0
        self.usage = UsageTracker(self)
        self.alerts = Alerts()
        self.store: StateStore = store if store is not None else _NoStore()  # type: ignore[assignment]
        self.sync = PoolSync(self, self.store)
        self.pacer = Pacer(settings, self.store)
        self.interval = MinInterval(settings)
        self.tokens = SharedTokens(self)
        self.has_model: Callable[[str, str], bool] | None = None  # (credential id, Kiro model id)
        # Which host serves an account, with its ARN and kiroVersion, and the switch on Kiro's
        # "profileArn is required" (pool/facts.py; set by the upstream).
        self.kiro_route: Callable[[Lease], Awaitable[tuple[str, str | None, str]]] | None = None
        self.kiro_switch: Callable[[Lease, Exception], Awaitable[bool]] | None = None
        self.on_added: Callable[[Credential], None] | None = None  # a login, import or admin add
        self._deck: list[str] = []  # `random`: the shuffled accounts not drawn yet
        self.ramp: dict[str, int] = {}  # `balanced` counts a joining account from the others' least

    async def attach(self) -> None:
        """Load what the state store remembers (health, sessions) and follow other processes' changes."""
        await self.sync.load()
        if isinstance(self.store, Events):
            self.store.subscribe(self.sync.on_event)
        for c in self.credentials:
            self._ramp(c.id)

    def _ramp(self, cid: str) -> None:
        offset = ramp_offset(cid, self.credentials, self.health)
        if offset:
            self.ramp[cid] = offset

    # -- selection -------------------------------------------------------------------------------

    def candidates(self) -> list[Credential]:
        """Credentials that exist and are not switched off (whatever their health)."""
        return [c for c in self.credentials
                if not c.disabled and (c.refresh_token or c.access_token or c.api_key)]

    def status(self, cred: Credential) -> str:
        return self.health[cred.id].status(cred.disabled)

    def can_serve(self, cred: Credential, model_id: str | None) -> bool:
        title = str(cred.raw.get("subscriptionTitle") or "").upper()
        if model_id and "opus" in model_id and "FREE" in title:
            return False
        # What Kiro listed for the account, when known (pool/facts.py): models roll out per account.
        return not (model_id and self.has_model is not None and not self.has_model(cred.id, model_id))

    def pick(self, model_id: str | None = None, session: str | None = None,
             exclude: frozenset[str] | set[str] = frozenset()) -> Credential:
        """The credential to try next; raises when none can serve."""
        now = time.time()
        pool = [c for c in self.candidates() if c.id not in exclude and self.can_serve(c, model_id)]
        rec = CURRENT.get()
        if rec is not None and rec.pin is not None:  # a client key pinned to one account
            pool = [c for c in pool if c.id == rec.pin]
            if not pool:
                raise GatewayError("overloaded", f"This client key is pinned to Kiro account #{rec.pin}, which "
                                   "cannot serve this request now.", 503, retry_after=self._ready_in(rec.pin))
        if not pool:
            if not self.candidates():
                # Clients are not told where the server keeps its files; the operator's log is.
                raise GatewayError("upstream", "No usable Kiro credential is configured on this gateway: its "
                                   "operator adds one (`kiro-gateway login`, `kiro-gateway import`, or the "
                                   "console at /admin).", 503)
            raise GatewayError("overloaded", "No Kiro credential is left to try for this request.", 503,
                               retry_after=self.seconds_until_ready())
        active = [c for c in pool if self.health[c.id].status(False, now) == ACTIVE]
        if session and (sid := self.sticky.get(session, now)) and any(c.id == sid for c in active):
            return next(c for c in active if c.id == sid)
        if active:
            self._rr += 1
            return order_candidates(active, self.health, self.settings.load_balancing, self._rr, self.ramp,
                                    self._deck)[0]
        # Nobody is active: never black the whole pool out — the soonest-ready one serves.
        waiting = [c for c in pool if self.health[c.id].status(False, now) in (COOLDOWN, EXHAUSTED)
                   or self.health[c.id].unhealthy_until > now]
        if waiting:
            return min(waiting, key=lambda c: (self.health[c.id].ready_at(), c.priority))
        raise GatewayError("permission", "Every Kiro credential is unhealthy: "
                           + "; ".join(f"#{c.id}: {self.health[c.id].reason}" for c in pool), 503)

    def _ready_in(self, cid: str) -> float | None:
        h = self.health.get(cid)
        wait = h.ready_at() - time.time() if h is not None else 0
        return max(1.0, wait) if wait > 0 else None

    def seconds_until_ready(self) -> float | None:
        """When the soonest resting credential (cooldown, exhausted, unhealthy) is back, in seconds
        from now; None when none rests or none is enabled. What a 429/503's Retry-After says."""
        now = time.time()
        ready = [self.health[c.id].ready_at() for c in self.candidates()]
        future = [r - now for r in ready if r > now]
        return max(1.0, min(future)) if future and len(future) == len(ready) else None

    async def acquire(self, model_id: str | None = None, session: str | None = None,
                      exclude: frozenset[str] | set[str] = frozenset()) -> Lease:
        """The next credential with a fresh token and, when paced, a free slot. Dead refresh tokens
        are skipped (and disabled); when every account is at its cap this waits (`queueTimeout`)."""
        rec = CURRENT.get()
        if rec is not None:
            rec.kiro_model = model_id
        if session and self.store.shared and self.sticky.get(session) is None:
            await self._sticky_from_store(session)
        skip = set(exclude)
        busy: set[str] = set()
        soonest, deadline = 0.1, 0.0
        while True:
            try:
                cred = self.pick(model_id, session, skip | busy)
                if busy and self.status(cred) != ACTIVE:
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
                token = await self.token_for(cred)
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
                lease = self._lease(cred, token, slot)
            except GatewayError as e:  # an unusable proxyUrl: this credential cannot be reached
                if slot is not None:
                    self.pacer.release(slot)
                log.warning("%s", e.message)
                skip.add(cred.id)
                continue
            if session:
                await self._stick(session, cred.id)
            await self.interval.wait(cred.id)  # minIntervalPerCredential, jittered
            return lease

    async def _sticky_from_store(self, session: str) -> None:
        if not isinstance(self.store, SessionStore):
            return
        try:
            hit = await self.store.sticky_get(session)
        except StoreError:
            return
        if hit is not None and hit[0] in self.health:
            self.sticky.restore(session, hit[0], hit[1])

    async def _stick(self, session: str, cid: str) -> None:
        before = self.sticky.put(session, cid)
        expires = self.sticky.expires(session)
        if not expires:
            return
        if isinstance(self.store, SessionStore) and before != cid:
            # A new binding: written now, so the next request finds it on any process.
            try:
                await self.store.sticky_put(session, cid, expires)
                return
            except StoreError:
                pass
        self.sync.stick(session, cid, expires)

    def _lease(self, cred: Credential, token: str, slot: str | None = None) -> Lease:
        s = self.settings
        mid = machine_id_for(cred.machine_id or s.machine_id, cred.refresh_token, cred.api_key, cred.id)
        return Lease(cred, token, mid, s.url("api_base_url", cred.region(s.region)), self.proxy_for(cred),
                     cred.auth_method == "api_key", slot)

    def secrets(self) -> tuple[str, ...]:
        """Every secret the pool holds (tokens, client secrets, API keys, proxy passwords): what the
        request log's redaction must never let through, whatever a client sends."""
        out = {self.settings.proxy_password or ""}
        for c in self.credentials:
            out.update((c.refresh_token or "", c.access_token or "", c.client_secret or "", c.api_key or "",
                        str(c.raw.get("proxyPassword") or "")))
        return tuple(s for s in out if len(s) >= 6)  # shorter ones would redact ordinary words

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

    def _health(self, cid: str) -> Health:
        """A credential's health; a throwaway one when it was removed while a request was on it."""
        return self.health.get(cid) or Health()

    def begin(self, lease: Lease) -> None:
        self._health(lease.credential.id).in_flight += 1
        rec = CURRENT.get()
        if rec is not None:
            rec.attempt(lease.credential.id)

    def end(self, lease: Lease) -> None:
        h = self.health.get(lease.credential.id)
        if h is not None:
            h.in_flight = max(0, h.in_flight - 1)
        if lease.slot is not None:
            self.pacer.release(lease.slot)
            lease.slot = None

    def succeeded(self, lease: Lease) -> None:
        cid = lease.credential.id
        h = self._health(cid)
        urgent = bool(h.cooldown_until or h.reason)  # back from a penalty: others should know soon
        h.succeeded(time.time())
        self.sync.touch(cid, urgent)
        rec = CURRENT.get()
        if rec is not None:
            rec.first_byte()

    def failed(self, lease: Lease, kind: str, reason: str | None, message: str,
               retry_after: float | None = None) -> None:
        """Record an upstream failure; throttling, quota and suspension change the state
        (docs/kiro-protocol.md, "Errors and throttling"); Kiro's Retry-After sets the rest."""
        cred, now = lease.credential, time.time()
        h = self._health(cred.id)
        if reason == "MONTHLY_REQUEST_COUNT":
            until = self.usage.reset_at(cred, now)
            h.exhaust(until or next_month_utc(now))
            if until is None:
                self.usage.refresh_soon(cred)  # learn the real reset date
        elif reason == "SUSPICIOUS_ACTIVITY":  # rest it long: more traffic now risks a ban
            rest = max(self.settings.suspicion_cooldown_seconds, retry_after or 0)
            h.cool_down(now, rest)
            self.alerts.raise_alert(cred.id, reason, now + rest)
        elif kind == "rate_limit":
            h.cool_down(now, retry_after or self.settings.cooldown_seconds)
            if reason is None and "throttled by the service" in message.lower():
                self.usage.refresh_soon(cred, exhausted_check=True)  # has meant credits ran out: usage says
        elif reason == "TEMPORARILY_SUSPENDED" or kind == "permission":
            h.suspend(message[:200])
        elif kind in ("upstream", "overloaded", "timeout"):
            h.transient(now)  # Kiro's trouble, not the account's: counted, no penalty
        else:
            h.failed(now, self.settings.failure_limit, self.settings.unhealthy_seconds)
        penalised = h.status(cred.disabled, now) != ACTIVE
        if penalised:
            self.sticky.drop(cred.id)
            self.sync.drop_sticky(cred.id)
        self.sync.touch(cred.id, urgent=penalised)  # a cooldown other processes must honour: write now

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
                return await self.tokens.refresh(cred, seen, force, margin)
            await self._refresh_checked(cred)
            return cred.access_token or ""

    async def _refresh_checked(self, cred: Credential) -> None:
        try:
            await self._refresh(cred)
        except RefreshError as e:
            await self._refresh_failed(cred, e)
            raise
        h = self._health(cred.id)
        if h.refresh_failures:
            h.refresh_failures = 0
            self.sync.touch(cred.id)

    async def adopt_stored_tokens(self, cid: str) -> None:
        await self.tokens.adopt_stored(cid)

    async def _refresh_failed(self, cred: Credential, err: RefreshError) -> None:
        h = self._health(cred.id)
        h.refresh_failures += 1
        self.sync.touch(cred.id)
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
        self.sync.drop_sticky(cred.id)
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
                                    cred.client_id or "", cred.client_secret or "", mid, via, s.refresh_timeout)
        else:
            res = await refresh_social(session, s.url("auth_base_url", region),
                                       cred.refresh_token or "", s.kiro_version, mid, via, s.refresh_timeout)
        cred.apply_refresh(res.access_token, res.refresh_token, res.expires_in, res.profile_arn)
        if persist:
            # Kiro may have rotated the refresh token: the old one is spent, so the new one goes to
            # disk (fsynced) first, then to the store, before the lock is let go and anything uses it.
            await self.save()
            if self.store.shared:  # the waiting processes read it once they hold the lock
                await self.tokens.share(cred)

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
            self._ramp(cred.id)
            added.append(cred)
        if added and self.single:
            self.single = False  # more than one credential: the file becomes an array
        await self.save()
        if self.on_added is not None:
            for cred in added:
                self.on_added(cred)
        return added

    async def remove(self, cred: Credential) -> None:
        if not cred.disabled:
            raise ValueError(f"Only a disabled credential can be deleted: disable #{cred.id} first.")
        self._pin_ids()
        self.credentials.remove(cred)
        for i, c in enumerate(self.credentials):
            c.index = i
        self._forget(cred.id)
        if self.single:
            self.single = False
        await self.save()

    def _forget(self, cid: str) -> None:
        self.health.pop(cid, None)
        self._locks.pop(cid, None)
        self.usage.forget(cid)
        self.sticky.drop(cid)
        self.sync.forget(cid)
        self.ramp.pop(cid, None)
        self.interval.forget(cid)

    async def set_disabled(self, cred: Credential, disabled: bool) -> None:
        cred.raw["disabled"] = disabled
        if disabled:
            cred.raw["disabledReason"] = "Manual"
            self.sticky.drop(cred.id)
        else:
            cred.raw.pop("disabledReason", None)
            self.health[cred.id].reset()
            self.sync.touch(cred.id, urgent=True)
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
        self.sync.touch(cred.id, urgent=True)
        cred.raw["disabled"] = False
        cred.raw.pop("disabledReason", None)
        await self.save()

    # -- the credentials file ----------------------------------------------------------------------

    async def save(self) -> None:
        """Write back: re-read the file, merge (writeback.py), write atomically — under a lock that,
        with a shared store, holds across processes so no write-back is lost to a race."""
        if not self.path:
            return
        async with self._write_lock:
            ours = [dict(c.raw) for c in self.credentials]
            args = (self.path, self._file_base, ours, self.single)
            lock = self.store.lock("credentials-file", _FILE_LOCK_TTL, _FILE_LOCK_TTL) if self.store.shared \
                else contextlib.nullcontext()
            try:
                async with lock:
                    merged, digest = await asyncio.to_thread(writeback.merge_and_write, *args)
            except (LockTimeout, StoreError) as e:
                log.warning("credentials write-back without the shared lock (%s)", type(e).__name__)
                merged, digest = await asyncio.to_thread(writeback.merge_and_write, *args)
            self._file_base, self._file_digest = merged, digest
            self._take_in(ours, merged)

    async def reload_file(self) -> bool:
        """The file changed on disk (by hand or by another process): take it in. A person's edits
        win; tokens refreshed here since are kept (newer `expiresAt`). Returns whether it changed."""
        if not self.path:
            return False
        ours = [dict(c.raw) for c in self.credentials]
        found = await asyncio.to_thread(writeback.read_file, self.path)
        if found is None or found.digest == self._file_digest:
            return False  # gone, half-written, or what we wrote ourselves
        merged = writeback.merge_lists(self._file_base, ours, found.entries, prefer_ours=False)
        self._file_base, self._file_digest = found.entries, found.digest
        self.single = found.single
        self._take_in(ours, merged)
        log.info("credentials reloaded from %s: %d credential(s)", self.path.name, len(self.credentials))
        if merged != found.entries:
            await self.save()  # tokens refreshed here meanwhile go back into the file
        return True

    def _take_in(self, snapshot: list[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
        """Make memory match merged entries. Credentials changed or added since `snapshot` was
        taken (a refresh finished while the file was being written) keep those changes."""
        snap = {writeback.entry_id(r, i): r for i, r in enumerate(snapshot)}
        current = {c.id: c for c in self.credentials}
        creds: list[Credential] = []
        for i, entry in enumerate(entries):
            cid = writeback.entry_id(entry, i)
            if any(c.id == cid for c in creds):
                log.warning("%s: two credentials with id %s; the second is ignored", self.path, cid)
                continue
            cred = current.get(cid)
            if cred is None:
                cred = Credential(dict(entry), i)
                self.health[cid] = Health()
                self._ramp(cid)
                self.sync.reload_ids.add(cid)
            else:
                if cid in snap and cred.raw != snap[cid]:
                    entry = writeback.merge_entry(snap[cid], cred.raw, entry, prefer_ours=True)
                cred.raw, cred.index = dict(entry), i  # same object: leases keep pointing at it
            creds.append(cred)
        kept = {c.id for c in creds}
        for cid, cred in current.items():
            if cid in kept:
                continue
            if cid in snap:
                self._forget(cid)  # removed in the file
            else:
                cred.index = len(creds)  # added while the file was written: its own save follows
                creds.append(cred)
        self.credentials = creds
