"""What the gateway learns about each Kiro account, kept in the state store across restarts.

Per credential: the host that serves it (`endpoint`), its discovered profile ARN (or that it has
none, as AWS Builder ID accounts), and later its model list. See docs/kiro-protocol.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..kiro.client import KiroHttp
from ..kiro.endpoints import base_url, discover_profile
from ..state.base import StateStore, StoreError
from .credential import Credential

__all__ = ["AccountFacts", "Route"]

log = logging.getLogger("kiro_gateway.pool")


@dataclass(slots=True)
class Route:
    host: str  # "runtime" | "legacy"
    base: str
    arn: str | None
    can_switch: bool  # auto mode on the branded host: may fall back to the legacy host once


class AccountFacts:
    def __init__(self, settings, store: StateStore, http: KiroHttp) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self._facts: dict[str, dict] = {}
        self._ask_after: dict[str, float] = {}  # discovery that found no answer: not before then

    async def get(self, cid: str) -> dict:
        facts = self._facts.get(cid)
        if facts is None:
            try:
                facts = await self.store.get_account_facts(cid) or {}
            except (StoreError, AttributeError):
                facts = {}
            self._facts[cid] = facts
        return facts

    async def learn(self, cid: str, **changes) -> None:
        facts = dict(await self.get(cid))
        facts.update(changes)
        self._facts[cid] = facts
        try:
            await self.store.put_account_facts(cid, facts)
        except (StoreError, AttributeError) as e:
            log.warning("could not keep what was learned about credential #%s: %s", cid, e)

    def forget(self, cid: str) -> None:
        self._facts.pop(cid, None)

    def kiro_version(self, cred: Credential) -> str:
        return cred.kiro_version or self.settings.kiro_version

    async def profile_arn(self, lease) -> str | None:
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

    async def route(self, lease) -> Route:
        cred = lease.credential
        s = self.settings
        region = cred.region(s.region)
        mode = cred.endpoint or s.endpoint
        runtime = base_url(s, "runtime", region)
        legacy = base_url(s, "legacy", region)
        arn = await self.profile_arn(lease)
        if runtime is None or mode == "legacy":
            return Route("legacy", legacy, arn, False)
        if mode == "runtime":
            return Route("runtime", runtime, arn, False)
        learned = (await self.get(cred.id)).get("endpoint")
        if learned == "legacy":
            return Route("legacy", legacy, arn, False)
        return Route("runtime", runtime, arn, True)

    async def switched(self, lease, route: Route) -> Route:
        """The branded host wants a profile this account lacks: the legacy host, remembered."""
        await self.learn(lease.credential.id, endpoint="legacy")
        log.info("credential #%s: served by the legacy host (no profile for the branded one)", lease.credential.id)
        return Route("legacy", base_url(self.settings, "legacy", lease.credential.region(self.settings.region)),
                     route.arn, False)
