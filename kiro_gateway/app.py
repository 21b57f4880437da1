"""The ASGI application: routes, client auth, the generic dialect handler, error handling."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from . import __version__
from .config import Settings
from .conversation import GatewayError, ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from .dialects.anthropic import AnthropicDialect, parse_request
from .dialects.anthropic.render import error_body as anthropic_error
from .dialects.base import Dialect
from .kiro.client import KiroHttp
from .kiro.models import KIRO_MODELS
from .pool.pool import CredentialPool
from .tokens import count_request
from .upstream import Upstream

__all__ = ["create_app", "Gateway"]

log = logging.getLogger("kiro_gateway")
MAX_BODY = 32 * 1024 * 1024
_LOOPBACK = ("127.", "::1", "localhost")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


class Gateway:
    """Everything a request needs, built once at start-up."""

    def __init__(self, settings: Settings, credentials_path: Path | None) -> None:
        self.settings = settings
        self.http = KiroHttp(settings.connect_timeout)
        self.pool = CredentialPool(settings, credentials_path, self.http)
        self.upstream = Upstream(settings, self.pool, self.http)
        self.anthropic = AnthropicDialect()
        self.started = time.time()

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
        return hmac.compare_digest(given.encode(), key.encode())

    # -- the generic handler: parse → upstream → render ---------------------------------------

    async def handle(self, request: Request, dialect: Dialect) -> Response:
        try:
            if not self.authorized(request):
                raise GatewayError("authentication", "Invalid API key: send the gateway's apiKey as "
                                   "x-api-key or Authorization: Bearer.")
            body = await read_json(request)
            conv = dialect.parse(body, request)
            reply = await self.upstream.open(conv)
        except GatewayError as e:
            return error_response(dialect, e)
        if conv.stream:
            return StreamingResponse(_guard(dialect.stream(conv, reply.__aiter__(), reply.input_estimate), dialect),
                                     media_type="text/event-stream", headers=_SSE_HEADERS)
        try:
            events = await reply.collect()
            return JSONResponse(dialect.whole(conv, events, reply.input_estimate))
        except GatewayError as e:
            return error_response(dialect, e)


_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def _guard(chunks: AsyncIterator[bytes], dialect: Dialect) -> AsyncIterator[bytes]:
    """Never let a bug end a stream without a word: the client gets an error event."""
    try:
        async for chunk in chunks:
            yield chunk
    except Exception as e:  # noqa: BLE001 - last line of defence, logged
        log.exception("stream failed")
        if dialect.name == "anthropic":
            yield b"event: error\ndata: " + anthropic_error("internal", f"gateway error: {type(e).__name__}") + b"\n\n"


def error_response(dialect: Dialect, err: GatewayError) -> Response:
    status, body = dialect.error(err)
    headers = {}
    if err.retry_after:
        headers["retry-after"] = str(int(err.retry_after + 0.999))
    return JSONResponse(body, status_code=status, headers=headers)


async def read_json(request: Request) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise GatewayError("invalid_request", f"Request body too large (limit {MAX_BODY} bytes).", 413)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise GatewayError("invalid_request", f"Request body too large (limit {MAX_BODY} bytes).", 413)
    if not raw:
        raise GatewayError("invalid_request", "The request body is empty; a JSON object is required.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise GatewayError("invalid_request", f"The request body is not valid JSON: {e}") from e


# ---------------------------------------------------------------------------------------------
# Anthropic-only endpoints


def _count_tokens(conv) -> int:
    texts: list[str] = []
    images = 0
    for m in conv.messages:
        for p in m.parts:
            if isinstance(p, TextPart):
                texts.append(p.text)
            elif isinstance(p, ToolResultPart):
                texts.append(p.content)
                images += len(p.images)
            elif isinstance(p, ToolCallPart):
                texts.append(p.name + " " + orjson.dumps(p.arguments).decode())
            elif isinstance(p, ThinkingPart):
                texts.append(p.text)
            elif isinstance(p, ImagePart):
                images += 1
    tools = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in conv.tools]
    return count_request(conv.system, texts, tools, images, len(conv.messages))


def models_anthropic() -> dict:
    data = [{"type": "model", "id": m.client_id, "display_name": m.display,
             "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m.created))}
            for m in KIRO_MODELS]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}


def create_app(settings: Settings, credentials_path: Path | None = None) -> Starlette:
    gw = Gateway(settings, credentials_path)
    anthropic = gw.anthropic

    async def messages(request: Request) -> Response:
        return await gw.handle(request, anthropic)

    async def count_tokens(request: Request) -> Response:
        try:
            if not gw.authorized(request):
                raise GatewayError("authentication", "Invalid API key.")
            conv = parse_request(await read_json(request), counting=True)
            return JSONResponse({"input_tokens": _count_tokens(conv)})
        except GatewayError as e:
            return error_response(anthropic, e)

    async def models(request: Request) -> Response:
        if not gw.authorized(request):
            return error_response(anthropic, GatewayError("authentication", "Invalid API key."))
        return JSONResponse(models_anthropic())

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
        return JSONResponse(anthropic_error(kind, msg), status_code=status)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse(anthropic_error("internal", "Internal gateway error."), status_code=500)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        await gw.http.close()

    routes = [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/api/event_logging/batch", event_logging, methods=["POST"]),
        # A base URL with a path prefix (…/anthropic) keeps working.
        Route("/{prefix:path}/v1/messages", messages, methods=["POST"]),
        Route("/{prefix:path}/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/{prefix:path}/v1/models", models, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: not_found, Exception: server_error})
    app.state.gateway = gw
    return app

