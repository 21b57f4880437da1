"""The composition root: every service built once, wired, and handed to the routes that need it.

Nothing imports this module but the entry points (cli.py, desktop.py): the routes receive narrow
services — a dialect's routes the `Front` (handler.py) and the model catalogue, the admin API and
the console the services they declare (admin/services.py), /metrics and /ready the pool, the store
and the request log. See docs/architecture.md for the picture.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute

from ..admin.routes import admin_routes
from ..config import Settings
from ..core.trace import CURRENT
from ..console.routes import console_routes
from ..console.sessions import SessionService
from ..dialects.anthropic import AnthropicDialect
from ..dialects.anthropic import routes as anthropic_routes
from ..dialects.base import Dialect
from ..dialects.gemini import GeminiDialect
from ..dialects.gemini import routes as gemini_routes
from ..dialects.openai_chat import OpenAIChatDialect
from ..dialects.openai_chat import routes as openai_chat_routes
from ..dialects.openai_responses import OpenAIResponsesDialect
from ..dialects.openai_responses import routes as openai_responses_routes
from ..keys.limits import KeyLimits
from ..keys.registry import KeyRegistry
from ..kiro.client import KiroHttp
from ..login import LoginManager
from ..observe.requestlog import RequestLog
from ..pool.facts import AccountFacts
from ..pool.pool import CredentialPool
from ..pool.refresher import BackgroundRefresher
from ..state import make_store
from ..state.base import Events
from ..state.writer import StateWriter
from ..upstream.catalog import ModelCatalog
from ..upstream.relay import Upstream
from ..util.heap import WATCH, settle
from ..web.browser_guard import BrowserGuard
from ..web.readgate import STATE_KEY as READ_GATE
from ..web.readgate import ReadGate
from .auth import ClientAuth
from .handler import Handler
from .reload import FileWatcher
from .routes import GatewayRoutes

__all__ = ["create_app", "Gateway"]

log = logging.getLogger("kiro_gateway")


class Gateway:
    """Every service, built once at start-up (and what `app.state.gateway` holds)."""

    def __init__(self, settings: Settings, credentials_path: Path | None, config_path: Path | None = None) -> None:
        self.settings = settings
        self.config_path = config_path  # where the admin API saves config changes
        home = config_path or credentials_path  # the data dir: state.db lives beside config.json
        self.store = make_store(settings.state_url, home.parent if home else None, settings.state_namespace)
        self.http = KiroHttp(settings.connect_timeout)
        self.read_gate = ReadGate(settings.pending_bodies_mb * 2**20)  # back-pressure on reads
        self.pool = CredentialPool(settings, credentials_path, self.http, self.store, request=CURRENT.get)
        self.facts = AccountFacts(settings, self.store, self.http)
        self.catalog = ModelCatalog(settings, self.pool, self.facts)
        # What the pool asks about Kiro: which account has which model, the host that serves it.
        self.pool.has_model = self.facts.has_model
        self.pool.kiro_route = self.facts.usage_route
        self.pool.kiro_switch = self.facts.switch_on
        self.pool.on_added = self.catalog.learn_soon
        self.upstream = Upstream(settings, self.pool, self.http, self.facts, self.catalog)
        self.logins = LoginManager(settings, self.pool, self.http)
        self.requests = RequestLog(settings)
        self.keys = KeyRegistry(self.store)
        self.limits = KeyLimits(self.store)
        self.requests.on_usage = self.limits.spent
        self.requests.secrets = self.pool.secrets
        self.writer = StateWriter(self.store, settings.state_flush_interval,
                                  lambda: (settings.log_retention_count, settings.log_retention_days * 86400))
        for source in (self.pool.sync, self.requests, self.keys):
            self.writer.add(source)
            source.wake = self.writer.wake
        self.watcher = FileWatcher(settings, config_path, credentials_path, self.pool.reload_file,
                                   self.settings_changed)
        self.anthropic, self.openai_chat, self.gemini = AnthropicDialect(), OpenAIChatDialect(), GeminiDialect()
        self.responses = OpenAIResponsesDialect(backing=self.store)
        self.dialects: dict[str, Dialect] = {
            "anthropic": self.anthropic,
            "openai_chat": self.openai_chat,
            "openai_responses": self.responses,
            "gemini": self.gemini,
        }
        self.auth = ClientAuth(settings, self.keys, self.limits)
        self.front = Handler(settings, self.auth, self.requests, self.upstream)
        self.console = SessionService(settings)
        self.signed_in: Callable[[Request], bool] | None = self.console.signed_in
        self.apply_config: Callable[[], Awaitable[bool]] | None = \
            self.watcher.apply_config if self.watcher.config is not None else None
        self.routes = GatewayRoutes(settings, self.auth, self.catalog, self.pool, self.store, self.writer,
                                    self.requests, self.dialects, self.read_gate)

    def settings_changed(self, names: set[str]) -> None:
        """config.json was re-read: rebuild what was made from the settings that changed."""
        if {"model_map", "default_model"} & names:
            self.catalog.rebuild(self.settings)
        if "sticky_seconds" in names:
            self.pool.sticky.ttl = self.settings.sticky_seconds
        if "pending_bodies_mb" in names:
            self.read_gate.budget = self.settings.pending_bodies_mb * 2**20
            self.read_gate.pump()

    def route_table(self) -> list[BaseRoute]:
        front, core = self.front, self.routes
        return [
            *core.ops(),
            *console_routes(self, self.console),  # before the dialects: their /{prefix}/v1/… would take /admin/try/v1/…
            # before /v1/models: its GET /v1/models… answers Gemini clients only
            *gemini_routes.routes(front, self.gemini, self.catalog),
            *core.listing(),
            *anthropic_routes.routes(front, self.anthropic),
            *openai_chat_routes.routes(front, self.openai_chat),
            *openai_responses_routes.routes(front, self.responses),
            *admin_routes(self),
        ]

    async def start(self) -> None:
        """Open the state store and load what it remembers; start the background writers."""
        await self.store.open()
        if isinstance(self.store, Events):
            self.store.subscribe(self.keys.on_event)
        await self.pool.attach()
        await self.keys.load()
        self.writer.start()
        self.watcher.start()

    async def stop(self) -> None:
        # The writer's last flush keeps what is pending across a clean shutdown; no step may hang it.
        for step in (self.logins.stop, self.watcher.stop, self.pool.pacer.stop, self.responses.store.settle,
                     self.writer.stop, self.store.close):
            try:
                await asyncio.wait_for(step(), 5)
            except TimeoutError:
                log.warning("shutdown: %s took too long; skipped", step.__qualname__)


def create_app(settings: Settings, credentials_path: Path | None = None,
               config_path: Path | None = None, gc_thresholds: tuple[int, int, int] | None = None) -> Starlette:
    """`gc_thresholds`: this process is the gateway's own (the command line's): once started, its
    heap is frozen and the collector's thresholds set to these (util/heap.py). In-process users
    (the tests) leave their interpreter's collector alone."""
    gw = Gateway(settings, credentials_path, config_path)
    refresher = BackgroundRefresher(gw.pool)
    WATCH.install()

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await gw.start()
        refresher.start()
        if gc_thresholds is not None:
            frozen = settle(gc_thresholds)
            log.debug("start-up heap frozen: %d objects; GC thresholds %s", frozen, gc_thresholds)
        yield {READ_GATE: gw.read_gate}  # uvicorn hands the lifespan state to its connections
        await refresher.stop()
        await gw.stop()
        await gw.http.close()

    app = Starlette(routes=gw.route_table(), lifespan=lifespan,
                    middleware=[Middleware(BrowserGuard, settings=gw.settings, reject=gw.routes.refuse)],
                    exception_handlers={HTTPException: gw.routes.not_found, Exception: gw.routes.server_error})
    app.state.gateway = gw
    app.state.refresher = refresher
    return app
