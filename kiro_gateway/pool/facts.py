"""What the gateway learns about each Kiro account, kept in the state store across restarts.

Per credential: the host that serves it (`endpoint`), its discovered profile ARN (or that it has
none, as AWS Builder ID accounts), and later its model list. See docs/kiro-protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..core.conversation import GatewayError
from ..kiro.client import KiroHttp
from ..kiro.endpoints import base_url, discover_profile, list_models, needs_profile
from ..util.tasks import failed as task_failed
from ..state.base import StateStore, StoreError
from .credential import Credential
from .lease import Lease

__all__ = ["AccountFacts", "Route", "MODELS_TTL"]

MODELS_TTL = 6 * 3600.0  # an account's model list older than this is fetched again, in the background
_MODELS_RETRY = 60.0  # after a failed fetch, not again before this

log = logging.getLogger("kiro_gateway.pool")


def _legacy(settings: Settings, region: str) -> str:
    return base_url(settings, "legacy", region) or ""  # the legacy host always has a URL


@dataclass(slots=True)
class Route:
    host: str  # "runtime" | "legacy"
    base: str
    arn: str | None
    can_switch: bool  # auto mode on the branded host: may fall back to the legacy host once


class AccountFacts:
    def __init__(self, settings: Settings, store: StateStore, http: KiroHttp) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self._facts: dict[str, dict[str, Any]] = {}
        self._ask_after: dict[str, float] = {}  # discovery that found no answer: not before then
        self._models_after: dict[str, float] = {}  # a model list fetch failed: not before then
        self._refreshing: dict[str, asyncio.Task[dict[str, list[int]] | None]] = {}
        self.generation = 0  # counts changes to what is known, for readers that keep a derived view

    async def get(self, cid: str) -> dict[str, Any]:
        facts = self._facts.get(cid)
        if facts is None:
            try:
                facts = await self.store.get_account_facts(cid) or {}
            except (StoreError, AttributeError):
                facts = {}
            self._facts[cid] = facts
            self.generation += 1
        return facts

    async def learn(self, cid: str, **changes: Any) -> None:
        facts = dict(await self.get(cid))
        facts.update(changes)
        self._facts[cid] = facts
        self.generation += 1
        try:
            await self.store.put_account_facts(cid, facts)
        except (StoreError, AttributeError) as e:
            log.warning("could not keep what was learned about credential #%s: %s", cid, e)

    def forget(self, cid: str) -> None:
        self._facts.pop(cid, None)
        self.generation += 1

    # -- models ----------------------------------------------------------------------------------

    def known_models(self, cid: str) -> dict[str, list[int]] | None:
        """The account's models (id -> [max input, max output] tokens) as last listed; None: unknown."""
        facts = self._facts.get(cid)
        models = facts.get("models") if facts else None
        return models if isinstance(models, dict) else None

    def has_model(self, cid: str, model_id: str) -> bool:
        """False when the account's list lacks the model, or Kiro said it does (INVALID_MODEL_ID)."""
        facts = self._facts.get(cid)
        if not facts:
            return True
        if model_id in (facts.get("missing") or ()):
            return False
        models = facts.get("models")
        return not isinstance(models, dict) or model_id in models

    async def models(self, lease: Lease, route: "Route | None" = None) -> dict[str, list[int]] | None:
        """The account's model list: fetched once, then refreshed in the background when stale."""
        cid = lease.credential.id
        facts = await self.get(cid)
        models = self.known_models(cid)
        now = time.time()
        if models is not None and now - float(facts.get("modelsAt") or 0) < MODELS_TTL:
            return models
        if self._models_after.get(cid, 0) > time.monotonic():
            return models
        if models is not None:  # stale: serve from it, fetch a new one beside
            if cid not in self._refreshing:
                task = asyncio.get_running_loop().create_task(self._fetch_models(lease, route))
                self._refreshing[cid] = task
                task.add_done_callback(lambda _t: self._refreshing.pop(cid, None))
            return models
        return await self._fetch_models(lease, route)

    async def _fetch_models(self, lease: Lease, route: "Route | None") -> dict[str, list[int]] | None:
        cid = lease.credential.id
        try:
            route = route or await self.route(lease)
            found = await list_models(self.http, route.base, lease.token, self.kiro_version(lease.credential),
                                      lease.machine_id, route.arn, lease.api_key_auth, lease.proxy)
        except GatewayError as e:
            self._models_after[cid] = time.monotonic() + _MODELS_RETRY
            log.info("credential #%s: model list not available (%s)", cid, e.message[:200])
            return self.known_models(cid)
        except Exception as e:  # noqa: BLE001 - a background refresh must not die silently
            self._models_after[cid] = time.monotonic() + _MODELS_RETRY
            task_failed("model-list", e)
            return self.known_models(cid)
        models = {mid: [lim[0], lim[1]] for mid, lim in found.items()}
        await self.learn(cid, models=models, modelsAt=time.time(), missing=[])
        return models

    async def model_missing(self, cid: str, model_id: str) -> None:
        """Kiro said INVALID_MODEL_ID: this account lacks the model (until its next list)."""
        facts = await self.get(cid)
        changes: dict[str, Any] = {"missing": sorted(set(facts.get("missing") or ()) | {model_id})}
        models = self.known_models(cid)
        if models is not None and model_id in models:
            changes["models"] = {k: v for k, v in models.items() if k != model_id}
        await self.learn(cid, **changes)
        log.info("credential #%s: Kiro does not serve %s to this account", cid, model_id)

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()

    def kiro_version(self, cred: Credential) -> str:
        return cred.kiro_version or self.settings.kiro_version

    async def profile_arn(self, lease: Lease) -> str | None:
        """The credential's ARN, else one discovered once (never a made-up one)."""
        cred = lease.credential
        if cred.profile_arn:
            return cred.profile_arn
        facts = await self.get(cred.id)
        if "profileArn" in facts or self._ask_after.get(cred.id, 0) > time.monotonic():
            return facts.get("profileArn")
        arn, final = await discover_profile(self.http, self.settings, lease.token, self.kiro_version(cred),
                                            lease.machine_id, lease.api_key_auth, lease.proxy)
        if final:
            await self.learn(cred.id, profileArn=arn)
            log.info("credential #%s: %s", cred.id, "profile found" if arn else "has no profile")
        else:
            self._ask_after[cred.id] = time.monotonic() + 300
        return arn

    async def route(self, lease: Lease) -> Route:
        cred = lease.credential
        s = self.settings
        region = cred.region(s.region)
        mode = cred.endpoint or s.endpoint
        runtime = base_url(s, "runtime", region)
        legacy = _legacy(s, region)
        arn = await self.profile_arn(lease)
        if runtime is None or mode == "legacy":
            return Route("legacy", legacy, arn, False)
        if mode == "runtime":
            return Route("runtime", runtime, arn, False)
        learned = (await self.get(cred.id)).get("endpoint")
        if learned == "legacy":
            return Route("legacy", legacy, arn, False)
        return Route("runtime", runtime, arn, True)

    async def usage_route(self, lease: Lease) -> tuple[str, str | None, str]:
        """(base URL, profile ARN, kiroVersion) for the account's other calls (usage limits)."""
        route = await self.route(lease)
        return route.base, route.arn, self.kiro_version(lease.credential)

    async def switch_on(self, lease: Lease, err: Exception) -> bool:
        """After a failed call: whether it was the branded host's "profileArn is required" and the
        account moved to the legacy host (so the call is worth making again)."""
        body = getattr(err, "body", "")
        if not needs_profile(getattr(err, "upstream_status", 0), body):
            return False
        route = await self.route(lease)
        if not route.can_switch:
            return False
        await self.switched(lease, route)
        return True

    async def switched(self, lease: Lease, route: Route) -> Route:
        """The branded host wants a profile this account lacks: the legacy host, remembered."""
        await self.learn(lease.credential.id, endpoint="legacy")
        log.info("credential #%s: served by the legacy host (no profile for the branded one)", lease.credential.id)
        return Route("legacy", _legacy(self.settings, lease.credential.region(self.settings.region)),
                     route.arn, False)
