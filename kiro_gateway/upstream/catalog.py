"""The one model catalogue: Kiro's models, the names clients use for them, which accounts serve
which, and their windows.

The upstream resolves a request's model through it, and the model-listing routes of every dialect
read it (as `core.models.Catalog`). It is built from the settings and rebuilt as a whole when
config.json changes (`rebuild`); nobody reaches into it to patch a table.

Names: the operator's `modelMap` (exact names, or prefixes ending in `*`) wins; then Gemini
names, which Gemini clients send (their "lite" models go to Haiku, the rest to Sonnet) unless the
operator mapped any Gemini name or chose a `defaultModel`; then Claude names by family and version
(kiro/models.py). Which accounts have a model comes from each account's ListAvailableModels
(pool/facts.py); an account not asked yet counts as having the built-in list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..config import Settings
from ..core.conversation import GatewayError
from ..core.models import ModelEntry
from ..kiro.auth import RefreshError
from ..kiro.models import KiroModel, ModelMapper, Resolved, UnknownModel, catalog, model_info
from ..pool.availability import served_models
from ..pool.credential import Credential
from ..pool.facts import AccountFacts
from ..pool.pool import CredentialPool
from ..util.tasks import failed as task_failed

__all__ = ["ModelCatalog", "GEMINI_DEFAULT", "GEMINI_LITE_DEFAULT"]

log = logging.getLogger("kiro_gateway.upstream")

GEMINI_DEFAULT = "claude-sonnet-4.6"
GEMINI_LITE_DEFAULT = "claude-haiku-4.5"
_LITE_PREFIXES = ("gemini-flash-lite", "gemini-2.0-flash-lite", "gemini-2.5-flash-lite",
                  "gemini-3-flash-lite", "gemini-3.1-flash-lite", "gemini-3.5-flash-lite")


def build_mapper(settings: Settings) -> ModelMapper:
    """The name table for these settings: modelMap, then the Gemini defaults, then the families."""
    mapper = ModelMapper(settings.model_map, settings.default_model)
    if not settings.default_model and not any(k.startswith("gemini") for k in mapper.overrides):
        for prefix in _LITE_PREFIXES:
            mapper.overrides[prefix + "*"] = GEMINI_LITE_DEFAULT
        mapper.overrides["gemini*"] = GEMINI_DEFAULT
    return mapper


def _entry(m: KiroModel, limits: tuple[int, int] | None = None) -> ModelEntry:
    window, most = limits or (m.context_window, m.max_output)
    return ModelEntry(m.client_id, m.display, m.created, window, most, m.id)


class ModelCatalog:
    def __init__(self, settings: Settings, pool: CredentialPool, facts: AccountFacts) -> None:
        self.pool = pool
        self.facts = facts
        self.model_map: dict[str, str] = dict(settings.model_map)
        self.mapper = build_mapper(settings)
        self._learning: set[asyncio.Task[None]] = set()
        self._windows: dict[str, tuple[int, int]] = {}
        self._windows_at = (-1.0, -1)

    def rebuild(self, settings: Settings) -> None:
        """config.json changed: the name table is made anew from the new settings."""
        self.model_map = dict(settings.model_map)
        self.mapper = build_mapper(settings)

    # -- names ---------------------------------------------------------------------------------------

    def map(self, name: str) -> Resolved:
        """A client's model name → the Kiro model (raises UnknownModel)."""
        return self.mapper.resolve(name)

    def resolve(self, name: str) -> ModelEntry | None:
        try:
            resolved = self.mapper.resolve(name)
        except UnknownModel:
            return None
        info = model_info(resolved.kiro_id)
        return ModelEntry(name, name, info.created, resolved.context_window, info.max_output, resolved.kiro_id)

    # -- what the accounts serve ---------------------------------------------------------------------

    def window(self, kiro_id: str) -> int | None:
        """The context window the pool serves for a model: the largest any usable account reports
        in its model list (the built-in figure for accounts not asked yet). Read for every request's
        size check, so the walk over the accounts is kept for a second, or until an account's
        list changes."""
        now, generation = time.monotonic(), self.facts.generation
        if now - self._windows_at[0] > 1.0 or generation != self._windows_at[1]:
            self._windows, self._windows_at = served_models(self.pool, self.facts), (now, generation)
        limits = self._windows.get(kiro_id)
        return limits[0] if limits and limits[0] else None

    async def served(self) -> dict[str, tuple[int, int]]:
        """Kiro model id -> (context window, output limit) the pool can serve; accounts whose
        list is not known yet are asked first (briefly: a slow one counts as the built-in list)."""
        unknown = [c for c in self.pool.candidates() if self.facts.known_models(c.id) is None]
        if unknown:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await asyncio.gather(*(self._learn_models(c) for c in unknown))
        return served_models(self.pool, self.facts)

    async def listed(self) -> list[ModelEntry]:
        served = await self.served()
        return [_entry(m, served.get(m.id)) for m in catalog(served)]

    async def describe(self, name: str) -> ModelEntry | None:
        try:
            kiro_id = self.mapper.resolve(name).kiro_id
        except UnknownModel:
            return None
        limits = (await self.served()).get(kiro_id)
        return _entry(model_info(kiro_id), limits) if limits else None

    async def aliases(self) -> list[tuple[str, ModelEntry]]:
        served = await self.served()
        by_id = {m.id: m for m in catalog(served)}
        out = []
        for alias, target in self.model_map.items():
            if alias.endswith("*"):  # prefix rules are not model names
                continue
            m = by_id.get(target)
            if m is not None:
                out.append((alias, _entry(m, served.get(m.id))))
        return out

    # -- learning a new account ----------------------------------------------------------------------

    def learn_soon(self, cred: Credential) -> None:
        """A new account (a login, an import): find its profile ARN and models in the background."""
        task = asyncio.get_running_loop().create_task(self._learn_account(cred))
        self._learning.add(task)
        task.add_done_callback(self._learning.discard)

    async def _learn_account(self, cred: Credential) -> None:
        try:
            lease = self.pool.lease(cred, await self.pool.token_for(cred))
            await self.facts.models(lease, await self.facts.route(lease))  # the route finds the ARN
        except (RefreshError, GatewayError) as e:
            log.info("credential #%s: not learned yet (%s); the first request will", cred.id, type(e).__name__)
        except Exception as e:  # noqa: BLE001 - a background task must not die silently
            task_failed("learn-account", e)

    async def _learn_models(self, cred: Credential) -> None:
        await self.facts.get(cred.id)
        if self.facts.known_models(cred.id) is not None:
            return
        try:
            lease = self.pool.lease(cred, await self.pool.token_for(cred))
        except (RefreshError, GatewayError):
            return
        await self.facts.models(lease)
