"""The ASGI application: the generic dialect handler, client auth, and the route table.

Each dialect package contributes its own routes (`dialects/<name>/routes.py`); this module only
assembles them and holds what every request shares.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from . import __version__
from .admin.routes import admin_routes
from .config import Settings
from .conversation import GatewayError
from .dialects.anthropic import AnthropicDialect
from .dialects.anthropic import routes as anthropic_routes
from .dialects.base import Dialect
from .dialects.gemini import GeminiDialect
from .dialects.gemini import routes as gemini_routes
from .dialects.openai_chat import OpenAIChatDialect
from .dialects.openai_chat import routes as openai_chat_routes
from .dialects.openai_responses import OpenAIResponsesDialect
from .dialects.openai_responses import routes as openai_responses_routes
from .http import JSONResponse, error_response, read_json
from .kiro.client import KiroHttp
from .pool.pool import CredentialPool
from .pool.refresher import BackgroundRefresher
from .upstream import Upstream

__all__ = ["create_app", "Gateway"]

log = logging.getLogger("kiro_gateway")
_LOOPBACK = ("127.", "::1", "localhost")
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class Gateway:
    """Everything a request needs, built once at start-up."""

    def __init__(self, settings: Settings, credentials_path: Path | None) -> None:
        self.settings = settings
        self.http = KiroHttp(settings.connect_timeout)
        self.pool = CredentialPool(settings, credentials_path, self.http)
        self.upstream = Upstream(settings, self.pool, self.http)
        self.dialects: dict[str, Dialect] = {
            "anthropic": AnthropicDialect(),
            "openai_chat": OpenAIChatDialect(),
            "openai_responses": OpenAIResponsesDialect(),
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

    # -- auth ------------------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        key = self.settings.api_key
        if not key:  # no key configured: only this machine may use the gateway
            host = request.client.host if request.client else ""
            return host.startswith(_LOOPBACK)
        given = request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or ""
        if not given:
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            else:
                given = request.query_params.get("key", "")
        return hmac.compare_digest(given.encode(), key.encode())

    def check_auth(self, request: Request) -> None:
        if not self.authorized(request):
            raise GatewayError("authentication", "Invalid API key: send the gateway's apiKey as "
                               "x-api-key or Authorization: Bearer.")

    # -- the generic handler: parse → upstream → render ---------------------------------------

    async def handle(self, request: Request, dialect: Dialect) -> Response:
        try:
            self.check_auth(request)
            conv = dialect.parse(await read_json(request), request)
            reply = await self.upstream.open(conv)
        except GatewayError as e:
            return error_response(dialect, e)
        if conv.stream:
            chunks = dialect.stream(conv, aiter(reply), reply.input_estimate)
            return StreamingResponse(_guard(chunks, dialect), media_type=dialect.stream_media_type,
                                     headers=_SSE_HEADERS)
        try:
            events = await reply.collect()
            return JSONResponse(dialect.whole(conv, events, reply.input_estimate))
        except GatewayError as e:
            return error_response(dialect, e)


async def _guard(chunks: AsyncIterator[bytes], dialect: Dialect) -> AsyncIterator[bytes]:
    """Never let a bug end a stream without a word: the client gets an error in its dialect."""
    try:
        async for chunk in chunks:
            yield chunk
    except Exception as e:  # noqa: BLE001 - last line of defence, logged
        log.exception("stream failed")
        yield dialect.stream_error(GatewayError("internal", f"gateway error: {type(e).__name__}"))


def create_app(settings: Settings, credentials_path: Path | None = None,
               config_path: Path | None = None) -> Starlette:
    gw = Gateway(settings, credentials_path)
    gw.config_path = config_path  # where the admin API saves config changes
    refresher = BackgroundRefresher(gw.pool)
    anthropic = gw.dialects["anthropic"]

    async def models(request: Request) -> Response:
        # OpenAI clients send Bearer without anthropic-version; the anthropic SDK sends both.
        openai_style = (request.headers.get("authorization", "")[:7].lower() == "bearer "
                        and "anthropic-version" not in request.headers)
        shape = gw.dialects["openai_chat"] if openai_style else anthropic
        if not gw.authorized(request):
            return error_response(shape, GatewayError("authentication", "Invalid API key."))
        if openai_style:
            return JSONResponse(openai_chat_routes.models_list(gw.settings.model_map))
        return JSONResponse(anthropic_routes.models_list())

    async def root(request: Request) -> Response:
        return JSONResponse({"name": "kiro-gateway", "version": __version__})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__,
                             "credentials": len(gw.pool.candidates()),
                             "uptime": round(time.time() - gw.started, 1)})

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
        return error_response(gw.dialect_for_path(request.url.path),
                              GatewayError("internal", "Internal gateway error."))

    @asynccontextmanager
    async def lifespan(app: Starlette):
        refresher.start()
        yield
        await refresher.stop()
        await gw.http.close()

    routes = [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/health", health, methods=["GET", "HEAD"]),
        *gemini_routes.routes(gw),  # before /v1/models: its GET /v1/models… answers Gemini clients only
        Route("/v1/models", models, methods=["GET"]),
        Route("/{prefix:path}/v1/models", models, methods=["GET"]),
        Route("/api/event_logging/batch", event_logging, methods=["POST"]),
        *anthropic_routes.routes(gw),
        *openai_chat_routes.routes(gw),
        *openai_responses_routes.routes(gw),
        *admin_routes(gw),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: not_found, Exception: server_error})
    app.state.gateway = gw
    app.state.refresher = refresher
    return app
