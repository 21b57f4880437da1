"""The gateway's own endpoints beside the dialects': /, /health, /ready, /metrics, the shared
/v1/models listing, Claude Code's telemetry sink, and the errors for unknown paths and bugs."""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..config import Settings
from ..core.conversation import ErrorKind, GatewayError
from ..core.trace import CURRENT
from ..dialects.anthropic import routes as anthropic_routes
from ..dialects.base import Dialect
from ..dialects.openai_chat import routes as openai_chat_routes
from ..observe.metrics import CONTENT_TYPE as METRICS_TYPE
from ..observe.metrics import metrics_allowed, render_metrics
from ..observe.ready import readiness
from ..observe.record import RequestRecord
from ..observe.requestlog import RequestLog
from ..pool.pool import CredentialPool
from ..state.base import StateStore, StoreError
from ..state.writer import StateWriter
from ..upstream.catalog import ModelCatalog
from ..web.http import JSONResponse, error_response
from ..web.readgate import ReadGate
from .auth import ClientAuth

__all__ = ["GatewayRoutes"]

log = logging.getLogger("kiro_gateway")


def _openai_style(request: Request) -> bool:
    # OpenAI clients send Bearer without anthropic-version; the anthropic SDK sends both.
    return (request.headers.get("authorization", "")[:7].lower() == "bearer "
            and "anthropic-version" not in request.headers)


class GatewayRoutes:
    def __init__(self, settings: Settings, auth: ClientAuth, catalog: ModelCatalog, pool: CredentialPool,
                 store: StateStore, writer: StateWriter, requests: RequestLog,
                 dialects: dict[str, Dialect], read_gate: ReadGate) -> None:
        self.settings = settings
        self.read_gate = read_gate
        self.auth = auth
        self.catalog = catalog
        self.pool = pool
        self.store = store
        self.writer = writer
        self.requests = requests
        self.dialects = dialects
        self.started = time.time()

    def dialect_for_path(self, path: str) -> Dialect:
        """The dialect whose error shape suits a request that matched no route."""
        if "/v1beta/" in path or ":generateContent" in path or ":streamGenerateContent" in path:
            return self.dialects["gemini"]
        if "/chat/completions" in path or "/responses" in path:
            return self.dialects["openai_chat"]
        return self.dialects["anthropic"]

    async def models(self, request: Request) -> Response:
        openai = _openai_style(request)
        shape = self.dialects["openai_chat" if openai else "anthropic"]
        if not self.auth.authorized(request):
            return error_response(shape, GatewayError("authentication", "Invalid API key."))
        listed = await self.catalog.listed()
        if openai:
            return JSONResponse(openai_chat_routes.models_list(listed, await self.catalog.aliases()))
        return JSONResponse(anthropic_routes.models_list(listed))

    async def model(self, request: Request) -> Response:
        """GET /v1/models/{id} (the SDKs' models.retrieve), in the Anthropic or OpenAI shape."""
        openai = _openai_style(request)
        shape = self.dialects["openai_chat" if openai else "anthropic"]
        if not self.auth.authorized(request):
            return error_response(shape, GatewayError("authentication", "Invalid API key."))
        found = await self.catalog.describe(request.path_params["model_id"])
        if found is None:
            return error_response(shape, GatewayError(
                "not_found", f"Model {request.path_params['model_id']!r} is not available on this gateway."))
        render = openai_chat_routes.model_entry if openai else anthropic_routes.model_entry
        return JSONResponse(render(found))

    async def root(self, request: Request) -> Response:
        return JSONResponse({"name": "kiro-gateway", "version": __version__})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__, "credentials": len(self.pool.candidates()),
                             "uptime": round(time.time() - self.started, 1)})

    async def ready(self, request: Request) -> Response:
        status, body = await readiness(self.pool, self.store)
        return JSONResponse(body, status_code=status)

    async def metrics(self, request: Request) -> Response:
        if not metrics_allowed(request, self.settings.metrics_key):
            return JSONResponse({"error": {"type": "permission_error", "message": "/metrics answers loopback "
                                           "clients, or others sending metricsKey."}}, status_code=403)
        await self.writer.flush()  # include the requests that just finished
        try:
            body = await render_metrics(self.store, self.pool, self.requests, self.read_gate)
            return Response(body, media_type=METRICS_TYPE)
        except StoreError:
            return Response("# the state store is unreachable\n", status_code=503, media_type=METRICS_TYPE)

    async def event_logging(self, request: Request) -> Response:
        # Claude Code reports telemetry here when allowed; accept and drop it.
        return JSONResponse({})

    async def not_found(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        kind: ErrorKind = "not_found" if status == 404 else "invalid_request"
        msg = f"{request.method} {request.url.path} is not an endpoint of this gateway." if status == 404 \
            else f"{request.method} is not allowed on {request.url.path}."
        return error_response(self.dialect_for_path(request.url.path), GatewayError(kind, msg, status))

    async def server_error(self, request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        err = GatewayError("internal", "Internal gateway error.")
        response = error_response(self.dialect_for_path(request.url.path), err)
        rec = CURRENT.get()
        return rec.failed(err, response) if isinstance(rec, RequestRecord) else response  # still in the log

    def refuse(self, path: str, message: str) -> Response:
        """The browser guard's refusal, in the shape of the endpoint asked for."""
        return error_response(self.dialect_for_path(path), GatewayError("permission", message))

    def ops(self) -> list[Route]:
        return [Route("/", self.root, methods=["GET", "HEAD"]),
                Route("/health", self.health, methods=["GET", "HEAD"]),
                Route("/ready", self.ready, methods=["GET", "HEAD"]),
                Route("/metrics", self.metrics, methods=["GET"])]

    def listing(self) -> list[Route]:
        return [Route("/v1/models", self.models, methods=["GET"]),
                Route("/{prefix:path}/v1/models", self.models, methods=["GET"]),
                Route("/v1/models/{model_id:path}", self.model, methods=["GET"]),
                Route("/api/event_logging/batch", self.event_logging, methods=["POST"])]


