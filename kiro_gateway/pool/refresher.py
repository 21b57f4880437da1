"""Background token refresh: renew tokens before requests find them due.

Every `refresh_check_interval` seconds (±20 %) it looks for credentials whose token expires within
`refresh_before + refresh_margin` (or has no known expiry) and refreshes them one at a time, a
random 0.5–1 × `refresh_spread` seconds apart — a burst of refreshes from one address is what
Kiro's risk control notices. It goes through `pool.token_for`, so it shares the per-credential
single flight with request-time refreshes (and, in team mode, the store's lock: one process
refreshes). Once per run it also fetches the usage limits of credentials whose subscription is
unknown (free-tier accounts must skip Opus).
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..kiro.auth import RefreshError
from .credential import Credential
from .pool import CredentialPool
from ..util.ids import jitter
from ..util.tasks import cancel_and_wait, failed

log = logging.getLogger("kiro_gateway.pool.refresher")

__all__ = ["BackgroundRefresher"]


class BackgroundRefresher:
    def __init__(self, pool: CredentialPool) -> None:
        self.pool = pool
        self.settings = pool.settings
        self._task: asyncio.Task[None] | None = None
        self._retry_at: dict[str, float] = {}  # after a failure, leave a credential alone until then
        self._usage_tried: set[str] = set()
        self.refreshed = 0

    def start(self) -> None:
        if self.settings.background_refresh and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kiro-background-refresh")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def is_due(self, cred: Credential, now: float) -> bool:
        if cred.auth_method == "api_key" or not cred.refresh_token or self._retry_at.get(cred.id, 0) > now:
            return False
        exp = cred.expires_at
        if not cred.access_token or exp is None:
            return True
        return exp - now < self.settings.refresh_before + self.settings.refresh_margin

    def due(self, now: float | None = None) -> list[Credential]:
        now = now or time.time()
        found = [c for c in self.pool.candidates() if self.is_due(c, now)]
        return sorted(found, key=lambda c: c.expires_at or 0.0)  # the soonest to expire first

    async def _gap(self) -> None:
        spread = self.settings.refresh_spread
        if spread > 0:
            await asyncio.sleep(jitter(spread / 2, spread))

    async def run_once(self) -> int:
        """One pass: refresh what is due, then learn unknown subscriptions. Returns refreshes done."""
        done = 0
        for i, cred in enumerate(self.due()):
            if i:
                await self._gap()
            now = time.time()
            if cred not in self.pool.candidates() or not self.is_due(cred, now):
                continue  # deleted, disabled, or a request refreshed it meanwhile
            try:
                # Due within the margin: a token another gateway process stored meanwhile will do.
                await self.pool.token_for(cred, force=not cred.access_token or cred.expires_at is None,
                                          margin=self.settings.refresh_before + self.settings.refresh_margin)
            except RefreshError as e:
                # Leave it for a while; request-time refresh still tries when it is needed.
                self._retry_at[cred.id] = now + max(self.settings.refresh_check_interval,
                                                    self.settings.refresh_margin / 3)
                log.warning("background refresh of credential #%s failed: %s", cred.id,
                            "refresh token rejected" if e.permanent else f"status {e.status or 'n/a'}")
                continue
            self._retry_at.pop(cred.id, None)
            done += 1
            self.refreshed += 1
        if self.settings.usage_on_start:
            await self._learn_subscriptions(first=not done)
        return done

    async def _learn_subscriptions(self, first: bool) -> None:
        for cred in self.pool.candidates():
            if cred.id in self._usage_tried or cred.subscription_title:
                continue
            self._usage_tried.add(cred.id)  # once per run of the gateway, whatever the outcome
            if not first:
                await self._gap()
            first = False
            try:
                await self.pool.usage.get(cred)
            except Exception as e:  # noqa: BLE001 - best effort, logged without details that could hold secrets
                log.info("usage limits of credential #%s not fetched: %s", cred.id, type(e).__name__)

    async def _run(self) -> None:
        if self.pool.store.shared:  # gateways started together do not all look at once
            await asyncio.sleep(jitter(0, self.settings.refresh_spread))
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the loop must outlive one bad pass
                failed("background-refresh", e)
            await asyncio.sleep(self.settings.refresh_check_interval * jitter(0.8, 1.2))
