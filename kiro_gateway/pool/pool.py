"""The credential pool: which account serves a request, with a fresh token.

A façade over parts that never call back into it: the picker chooses (picker.py, selection.py,
health.py), the pacer and the interval space requests out (pacing.py, interval.py), the token
authority refreshes (oauth.py), usage limits are fetched by usage.py, sync.py keeps health and
stickiness in step with the state store, and file.py writes the credentials file back merged
(writeback.py). The pool owns the credentials and the health map, and wires the parts together.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ..config import Settings
from ..core.conversation import GatewayError
from ..kiro.client import KiroHttp, Proxy
from ..state.base import Events, StateStore
from ..state.local import LocalCoordination
from .admission import Admission
from .alerts import Alerts
from .credential import Credential
from .file import CredentialsFile, load_credentials
from .health import Health
from .interval import MinInterval
from .lease import Lease, Leases, RequestNotes
from .oauth import TokenAuthority
from .outcomes import record_failure
from .pacing import Pacer
from .picker import Picker
from .selection import Sticky
from .sync import PoolSync
from .usage import Route, Switch, UsageTracker

log = logging.getLogger("kiro_gateway.pool")

__all__ = ["CredentialPool", "Lease", "RequestNotes", "load_credentials"]


class _NoStore(LocalCoordination):
    """Stand-in until a real store is attached (a pool used without the app)."""

    shared = False


class CredentialPool:
    def __init__(self, settings: Settings, path: Path | None, http: KiroHttp, store: StateStore | None = None,
                 request: Callable[[], RequestNotes | None] = lambda: None) -> None:
        self.settings, self.path, self.http = settings, path, http
        # Without the app there is no store: a stand-in that coordinates within this process.
        self.store = store if store is not None else cast(StateStore, _NoStore())
        self.request = request  # the request being served, if any
        self.file = CredentialsFile(path, self.store, self._joined, self._forget)
        self.health: dict[str, Health] = {c.id: Health() for c in self.credentials}
        self.sticky = Sticky(settings.sticky_seconds)
        self.picker = Picker(settings, self.health, self.sticky)
        self.leases = Leases(settings)
        self.alerts = Alerts()
        self.sync = PoolSync(self.store, self.health, self.sticky, adopt=self._adopt)
        self.pacer = Pacer(settings, self.store)
        self.interval = MinInterval(settings, self.store)
        self.authority = TokenAuthority(settings, http, self.store, self.leases, self._health, self.sync.touch,
                                        self.file.save, self._unstick)
        tokens = self.authority.token_for
        self.admission = Admission(settings, self.health, tokens, self.pacer, self.leases, self.sync, self.interval)
        self.usage = UsageTracker(settings, http, self.leases, tokens, self.health.get, self.sync.touch, self.file.save)
        self.has_model: Callable[[str, str], bool] | None = None  # (credential id, Kiro model id)
        self.on_added: Callable[[Credential], None] | None = None  # a login, import or admin add

    # Which host serves an account, with its ARN and kiroVersion, and the switch on Kiro's
    # "profileArn is required" (pool/facts.py; set by the upstream, used for usage queries).
    @property
    def kiro_route(self) -> Route | None:
        return self.usage.route

    @kiro_route.setter
    def kiro_route(self, route: Route | None) -> None:
        self.usage.route = route

    @property
    def kiro_switch(self) -> Switch | None:
        return self.usage.switch

    @kiro_switch.setter
    def kiro_switch(self, switch: Switch | None) -> None:
        self.usage.switch = switch

    @property
    def refresh_count(self) -> int:
        return self.authority.refresh_count

    async def attach(self) -> None:
        """Load what the state store remembers (health, sessions) and follow other processes' changes."""
        await self.sync.load()
        if isinstance(self.store, Events):
            self.store.subscribe(self.sync.on_event)
        for c in self.credentials:
            self.picker.join(c.id, self.credentials)

    async def _adopt(self, cid: str) -> None:
        if (cred := self.get(cid)) is not None:
            await self.authority.adopt_stored(cred)

    def _unstick(self, cred: Credential) -> None:
        self.sticky.drop(cred.id)
        self.sync.drop_sticky(cred.id)

    # -- selection -------------------------------------------------------------------------------

    def candidates(self) -> list[Credential]:
        """Credentials that exist and are not switched off (whatever their health)."""
        return [c for c in self.credentials
                if not c.disabled and (c.refresh_token or c.access_token or c.api_key)]

    def status(self, cred: Credential) -> str:
        return self.health[cred.id].status(cred.disabled)

    def can_serve(self, cred: Credential, model_id: str | None) -> bool:
        if model_id and "opus" in model_id and "FREE" in (cred.subscription_title or "").upper():
            return False
        # What Kiro listed for the account, when known (pool/facts.py): models roll out per account.
        return not (model_id and self.has_model is not None and not self.has_model(cred.id, model_id))

    def pick(self, model_id: str | None = None, session: str | None = None,
             exclude: frozenset[str] | set[str] = frozenset()) -> Credential:
        """The credential to try next; raises when none can serve."""
        candidates = self.candidates()
        servable = [c for c in candidates if c.id not in exclude and self.can_serve(c, model_id)]
        rec = self.request()
        return self.picker.pick(servable, candidates, session, rec.pin if rec is not None else None)

    def seconds_until_ready(self) -> float | None:
        """Seconds until the soonest resting credential is back (a Retry-After); see picker.py."""
        return self.picker.seconds_until_ready(self.candidates())

    async def acquire(self, model_id: str | None = None, session: str | None = None,
                      exclude: frozenset[str] | set[str] = frozenset()) -> Lease:
        """The next credential with a fresh token and, when paced, a free slot (admission.py). Dead
        refresh tokens are skipped (and disabled); when every account is at its cap this waits."""
        if (rec := self.request()) is not None:
            rec.kiro_model = model_id
        return await self.admission.admit(lambda skip: self.pick(model_id, session, skip), session, exclude)

    def lease(self, cred: Credential, token: str, slot: str | None = None) -> Lease:
        return self.leases.make(cred, token, slot)


    def proxy_for(self, cred: Credential) -> Proxy | None:
        """The credential's own proxy (`direct` = none), else the global one."""
        return self.leases.proxy_for(cred)

    def secrets(self) -> tuple[str, ...]:
        """Every secret the pool holds (tokens, client secrets, API keys, proxy passwords): what the
        request log's redaction must never let through, whatever a client sends."""
        out = {self.settings.proxy_password or ""}
        for c in self.credentials:
            out.update((c.refresh_token or "", c.access_token or "", c.client_secret or "", c.api_key or "",
                        c.proxy_password or ""))
        return tuple(s for s in out if len(s) >= 6)  # shorter ones would redact ordinary words

    async def token_for(self, cred: Credential, force: bool = False, margin: float | None = None) -> str:
        """A bearer token for `cred`, refreshed first when due (see oauth.py)."""
        return await self.authority.token_for(cred, force, margin)

    async def probe(self, cred: Credential) -> None:
        """Refresh a credential not added yet, saving nothing: raises RefreshError if its token fails."""
        await self.authority.probe(cred)

    # -- outcomes --------------------------------------------------------------------------------

    def _health(self, cid: str) -> Health:
        """A credential's health; a throwaway one when it was removed while a request was on it."""
        return self.health.get(cid) or Health()

    def begin(self, lease: Lease) -> None:
        self._health(lease.credential.id).in_flight += 1
        if (rec := self.request()) is not None:
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
        if (rec := self.request()) is not None:
            rec.first_byte()

    def failed(self, lease: Lease, kind: str, reason: str | None, message: str,
               retry_after: float | None = None) -> None:
        """Record an upstream failure (outcomes.py says what it does to the credential's health)."""
        cred = lease.credential
        penalised = record_failure(self._health(cred.id), cred, kind, reason, message, retry_after, self.settings,
                                   self.usage, self.alerts)
        if penalised:
            self._unstick(cred)
        self.sync.touch(cred.id, urgent=penalised)  # a cooldown other processes must honour: write now

    # -- changes by hand (admin API, import, login) ----------------------------------------------

    def get(self, cred_id: str | int) -> Credential | None:
        return next((c for c in self.credentials if c.id == str(cred_id)), None)

    def current_id(self) -> str | None:
        """The credential a session-less request would get now (without advancing round-robin)."""
        rr = self.picker.rr
        try:
            return self.pick().id
        except GatewayError:
            return None
        finally:
            self.picker.rr = rr

    def has_refresh_token(self, token: str) -> bool:
        """Duplicate check by sha256, so tokens are compared without timing leaks."""
        digest = hashlib.sha256(token.encode()).digest()
        return any(c.refresh_token and hmac.compare_digest(digest, hashlib.sha256(c.refresh_token.encode()).digest())
                   for c in self.credentials)

    async def add(self, *raws: dict[str, Any]) -> list[Credential]:
        """Append credentials with fresh ids (max numeric id + 1) and persist them."""
        for c in self.credentials:
            c.pin_id()  # ids taken from positions would shift on delete
        added = []
        for raw in raws:
            cred = Credential(raw, len(self.credentials))
            cred.set_id(max((int(c.id) for c in self.credentials if c.id.isdigit()), default=0) + 1)
            self.credentials.append(cred)
            self.health[cred.id] = Health()
            self.picker.join(cred.id, self.credentials)
            added.append(cred)
        if added:
            self.file.single = False  # more than one credential: the file becomes an array
        await self.save()
        if self.on_added is not None:
            for cred in added:
                self.on_added(cred)
        return added

    async def remove(self, cred: Credential) -> None:
        if not cred.disabled:
            raise ValueError(f"Only a disabled credential can be deleted: disable #{cred.id} first.")
        for c in self.credentials:
            c.pin_id()
        self.credentials.remove(cred)
        for i, c in enumerate(self.credentials):
            c.index = i
        self._forget(cred.id)
        self.file.single = False
        await self.save()

    def _forget(self, cid: str) -> None:
        self.health.pop(cid, None)
        for part in (self.authority, self.usage, self.sync, self.picker, self.interval):
            part.forget(cid)
        self.sticky.drop(cid)

    async def set_disabled(self, cred: Credential, disabled: bool) -> None:
        cred.set_disabled(disabled, "Manual")
        if disabled:
            self.sticky.drop(cred.id)
        else:
            self.health[cred.id].reset()
            self.sync.touch(cred.id, urgent=True)
        await self.save()

    async def set_priority(self, cred: Credential, priority: int) -> None:
        cred.set_priority(priority)
        self.sticky.clear()  # sessions pick again under the new order
        await self.save()

    async def reset(self, cred: Credential) -> None:
        """Forget failures and health, and enable."""
        h = self.health[cred.id]
        h.reset()
        h.failure_count = 0
        self.sync.touch(cred.id, urgent=True)
        cred.set_disabled(False)
        await self.save()

    # -- the credentials file (file.py) ---------------------------------------------------------

    @property
    def credentials(self) -> list[Credential]:
        return self.file.credentials

    @property
    def single(self) -> bool:
        """Whether the file holds one object rather than an array."""
        return self.file.single

    async def save(self) -> None:
        """Write the credentials back to their file, merged with what it holds meanwhile."""
        await self.file.save()

    async def reload_file(self) -> bool:
        """Take in the file as changed on disk; returns whether it changed."""
        return await self.file.reload()

    def _joined(self, cid: str) -> None:
        """A credential appeared in the file."""
        self.health[cid] = Health()
        self.picker.join(cid, self.credentials)
        self.sync.reload_ids.add(cid)
