"""The ASGI application: the generic dialect handler, client auth, and the route table.

Each dialect package contributes its own routes (`dialects/<name>/routes.py`); this module only
assembles them and holds what every request shares.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..admin.routes import admin_routes
from ..config import Settings
from ..console.routes import console_routes
from ..core.conversation import GatewayError
from ..dialects.anthropic import AnthropicDialect
from ..dialects.anthropic import routes as anthropic_routes
from ..dialects.base import Dialect
from ..dialects.gemini import GeminiDialect
from ..dialects.gemini import routes as gemini_routes
from ..dialects.openai_chat import OpenAIChatDialect
from ..dialects.openai_chat import routes as openai_chat_routes
from ..dialects.openai_responses import OpenAIResponsesDialect
from ..dialects.openai_responses import routes as openai_responses_routes
from ..web.browser_guard import BrowserGuard
from ..web.http import JSONResponse, StreamedReply, error_response, read_json
from ..keys.limits import KeyLimits
from ..keys.registry import ClientKey, KeyRegistry
from ..login import LoginManager
from ..kiro.client import KiroHttp
from ..observe.metrics import CONTENT_TYPE as METRICS_TYPE
from ..observe.metrics import metrics_allowed, render_metrics
from ..observe.ready import readiness
from ..observe.record import CURRENT, RequestRecord
from ..observe.requestlog import RequestLog
from ..pool.pool import CredentialPool
from ..pool.refresher import BackgroundRefresher
from .reload import FileWatcher
from ..state import StoreError, make_store
from ..state.writer import StateWriter
from ..upstream.relay import Upstream

__all__ = ["create_app", "Gateway"]

log = logging.getLogger("kiro_gateway")
_LOOPBACK = ("127.", "::1", "localhost")
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class Gateway:
    """Everything a request needs, built once at start-up."""

    def __init__(self, settings: Settings, credentials_path: Path | None, config_path: Path | None = None) -> None:
        self.settings = settings
        self.config_path = config_path  # where the admin API saves config changes
        home = config_path or credentials_path  # the data dir: state.db lives beside config.json
        self.store = make_store(settings.state_url, home.parent if home else None, settings.state_namespace)
        self.http = KiroHttp(settings.connect_timeout)
        self.pool = CredentialPool(settings, credentials_path, self.http, self.store, request=CURRENT.get)
        self.upstream = Upstream(settings, self.pool, self.http)
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
        self.watcher = FileWatcher(self, config_path, credentials_path)
        self.dialects: dict[str, Dialect] = {
            "anthropic": AnthropicDialect(),
            "openai_chat": OpenAIChatDialect(),
            "openai_responses": OpenAIResponsesDialect(backing=self.store),
            "gemini": GeminiDialect(),
        }
        self.started = time.time()

    def dialect_for_path(self, path: str) -> Dialect:
        """The dialect whose error shape suits a request that matched no route."""
        if "/v1beta/" in path or ":generateContent" in path or ":streamGenerateContent" in path:
            return self.dialects["gemini"]
        if "/chat/completions" in path or "/responses" in path:
            return self.dialects["openai_chat"]
        return self.dialects["anthropic"]

    async def start(self) -> None:
        """Open the state store and load what it remembers; start the background writers."""
        await self.store.open()
        self.store.subscribe(self.keys.on_event)
        await self.pool.attach()
        await self.keys.load()
        self.writer.start()
        self.watcher.start()

    async def stop(self) -> None:
        # The writer's last flush keeps what is pending across a clean shutdown; no step may hang it.
        responses = self.dialects["openai_responses"].store  # type: ignore[attr-defined]
        for step in (self.logins.stop, self.watcher.stop, self.pool.pacer.stop, responses.settle, self.writer.stop,
                     self.store.close):
            try:
                await asyncio.wait_for(step(), 5)
            except TimeoutError:
                log.warning("shutdown: %s took too long; skipped", step.__qualname__)

    # -- auth ------------------------------------------------------------------------------------

    @staticmethod
    def _presented(request: Request) -> str:
        given = request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or ""
        if not given:
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            else:
                given = request.query_params.get("key", "")
        return given

    def identify(self, request: Request) -> tuple[bool, ClientKey | None]:
        """(authorized, the named client key presented — None for the apiKey or loopback)."""
        key = self.settings.api_key
        if request.scope.get("kiro_console"):  # the signed-in console's playground (console/playground.py)
            return True, None
        given = self._presented(request)
        if key and hmac.compare_digest(given.encode(), key.encode()):
            return True, None
        if len(self.keys) and (named := self.keys.find(given)) is not None:
            return True, named
        if not key:  # no key configured: only this machine may use the gateway
            host = request.client.host if request.client else ""
            return host.startswith(_LOOPBACK), None
        return False, None

    def authorized(self, request: Request) -> bool:
        return self.identify(request)[0]

    def client(self, request: Request) -> ClientKey | None:
        """Authenticate (or raise the 401): the named client key presented, None for the gateway's
        own key or a loopback client. Its id goes into the request scope as `kiro_gateway.client`:
        what a client owns (its stored Responses) is keyed by it."""
        ok, named = self.identify(request)
        if not ok:
            self.check_auth(request)
        request.scope["kiro_gateway.client"] = f"key:{named.id}" if named is not None else "default"
        return named

    async def admit(self, request: Request, rec: RequestRecord) -> None:
        """Authenticate, and hold a named key to its own limits (429 in the client's dialect)."""
        named = self.client(request)
        if named is None:
            rec.key = "default" if self.settings.api_key else "local"
            return
        rec.key, rec.key_id, rec.pin = named.name, named.id, named.credential
        if named.limited:
            await self.limits.check(named)

    def check_auth(self, request: Request) -> None:
        if self.authorized(request):
            return
        if not self.settings.api_key and not len(self.keys):
            raise GatewayError("authentication", "This gateway has no apiKey set, so it admits only clients on its "
                               "own machine; its operator sets apiKey in config.json to let others in.")
        raise GatewayError("authentication", "Invalid API key: send the gateway's apiKey as "
                           "x-api-key or Authorization: Bearer.")

    # -- the generic handler: parse → upstream → render ---------------------------------------

    async def handle(self, request: Request, dialect: Dialect) -> Response:
        rec = self.requests.begin(request, dialect.name)  # request log: closed by the reply's end
        try:
            await self.admit(request, rec)
            body = await read_json(request)
            prepare = getattr(dialect, "prepare", None)  # a dialect that reads state before parsing
            if prepare is not None:
                await prepare(body, request)
            conv = dialect.parse(body, request)
            if not self.settings.log_bodies:  # (the request log reads it at the end when it records bodies)
                request.__dict__.pop("_body", None)  # parsed: let Starlette's cached raw body go
            rec.model = conv.model
            # The conversation's content is dropped once the Kiro body is built: many open
            # streams, little memory.
            reply = await self.upstream.open(conv, release=True)
        except GatewayError as e:
            return rec.failed(e, error_response(dialect, e))
        served = {"x-kiro-model": reply.served_model}  # which Kiro model answered (a fallback's?)
        if reply.request.dropped_turns:  # the oldest turns were left out to fit the window
            rec.trimmed = reply.request.dropped_turns
            served["x-kiro-trimmed-messages"] = str(rec.trimmed)
        if conv.stream:
            chunks = dialect.stream(conv, aiter(reply), reply.input_estimate)
            return StreamedReply(_guard(chunks, dialect, rec.streaming(reply)),  # type: ignore[return-value]
                                 dialect.stream_media_type, _SSE_HEADERS | served)
        try:
            events = await reply.collect()
            return rec.answered(reply, JSONResponse(dialect.whole(conv, events, reply.input_estimate),
                                                    headers=served))
        except GatewayError as e:
            return rec.failed(e, error_response(dialect, e))


async def _guard(chunks: AsyncIterator[bytes], dialect: Dialect,
                 ended: Callable[[str | None], None] | None = None) -> AsyncIterator[bytes]:
    """Never let a bug end a stream without a word: the client gets an error in its dialect."""
    error = None
    try:
        async for chunk in chunks:
            yield chunk
    except Exception as e:  # noqa: BLE001 - last line of defence, logged
        log.exception("stream failed")
        error = "internal"
        yield dialect.stream_error(GatewayError("internal", f"gateway error: {type(e).__name__}"))
    finally:
        if ended is not None:
            ended(error)  # the request log's record of this stream (also when the client left)


def create_app(settings: Settings, credentials_path: Path | None = None,
               config_path: Path | None = None) -> Starlette:
    gw = Gateway(settings, credentials_path, config_path)
    refresher = BackgroundRefresher(gw.pool)
    anthropic = gw.dialects["anthropic"]

    async def models(request: Request) -> Response:
        # OpenAI clients send Bearer without anthropic-version; the anthropic SDK sends both.
        openai_style = (request.headers.get("authorization", "")[:7].lower() == "bearer "
                        and "anthropic-version" not in request.headers)
        shape = gw.dialects["openai_chat"] if openai_style else anthropic
        if not gw.authorized(request):
            return error_response(shape, GatewayError("authentication", "Invalid API key."))
        served = await gw.upstream.served_models()
        if openai_style:
            return JSONResponse(openai_chat_routes.models_list(gw.settings.model_map, served))
        return JSONResponse(anthropic_routes.models_list(served))

    async def model(request: Request) -> Response:
        """GET /v1/models/{id} (the SDKs' models.retrieve), in the Anthropic or OpenAI shape."""
        openai_style = (request.headers.get("authorization", "")[:7].lower() == "bearer "
                        and "anthropic-version" not in request.headers)
        shape = gw.dialects["openai_chat"] if openai_style else anthropic
        if not gw.authorized(request):
            return error_response(shape, GatewayError("authentication", "Invalid API key."))
        found = await gw.upstream.describe_model(request.path_params["model_id"])
        if found is None:
            return error_response(shape, GatewayError(
                "not_found", f"Model {request.path_params['model_id']!r} is not available on this gateway."))
        info, limits = found
        entry = (openai_chat_routes.model_entry if openai_style else anthropic_routes.model_entry)(info, limits)
        return JSONResponse(entry)

    async def root(request: Request) -> Response:
        return JSONResponse({"name": "kiro-gateway", "version": __version__})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__,
                             "credentials": len(gw.pool.candidates()),
                             "uptime": round(time.time() - gw.started, 1)})

    async def ready(request: Request) -> Response:
        status, body = await readiness(gw)
        return JSONResponse(body, status_code=status)

    async def metrics(request: Request) -> Response:
        if not metrics_allowed(request, gw.settings.metrics_key):
            return JSONResponse({"error": {"type": "permission_error", "message": "/metrics answers loopback "
                                           "clients, or others sending metricsKey."}}, status_code=403)
        await gw.writer.flush()  # include the requests that just finished
        try:
            return Response(await render_metrics(gw), media_type=METRICS_TYPE)
        except StoreError:
            return Response("# the state store is unreachable\n", status_code=503, media_type=METRICS_TYPE)

    async def event_logging(request: Request) -> Response:
        # Claude Code reports telemetry here when allowed; accept and drop it.
        return JSONResponse({})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        kind = "not_found" if status == 404 else "invalid_request"
        msg = f"{request.method} {request.url.path} is not an endpoint of this gateway." if status == 404 \
            else f"{request.method} is not allowed on {request.url.path}."
        return error_response(gw.dialect_for_path(request.url.path), GatewayError(kind, msg, status))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        err = GatewayError("internal", "Internal gateway error.")
        response = error_response(gw.dialect_for_path(request.url.path), err)
        rec = CURRENT.get()
        return rec.failed(err, response) if rec is not None else response  # still in the request log

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await gw.start()
        refresher.start()
        yield
        await refresher.stop()
        await gw.stop()
        await gw.http.close()

    routes = [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/ready", ready, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
        *console_routes(gw),  # before the dialects: their /{prefix}/v1/… routes would take /admin/try/v1/…
        *gemini_routes.routes(gw),  # before /v1/models: its GET /v1/models… answers Gemini clients only
        Route("/v1/models", models, methods=["GET"]),
        Route("/{prefix:path}/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", model, methods=["GET"]),
        Route("/api/event_logging/batch", event_logging, methods=["POST"]),
        *anthropic_routes.routes(gw),
        *openai_chat_routes.routes(gw),
        *openai_responses_routes.routes(gw),
        *admin_routes(gw),
    ]
    def refuse(path: str, message: str) -> Response:
        return error_response(gw.dialect_for_path(path), GatewayError("permission", message))

    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(BrowserGuard, settings=gw.settings, reject=refuse)],
                    exception_handlers={HTTPException: not_found, Exception: server_error})
    app.state.gateway = gw
    app.state.refresher = refresher
    return app
