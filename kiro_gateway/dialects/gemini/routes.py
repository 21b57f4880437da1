"""The Gemini API's HTTP surface, under /v1beta and /v1 (google-genai's default is /v1):

    POST …/models/{model}:generateContent | :streamGenerateContent[?alt=sse] | :countTokens
    GET  …/models, …/models/{model}

`{model}` may carry a `models/` prefix. Starlette cannot put a literal ':' after a path parameter,
so the routes take `{rest:path}` and split it on the last ':'.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from ...core.conversation import GatewayError
from ...web.http import JSONResponse, error_response, json_body
from ...core.models import Catalog, ModelEntry
from ...core.tokencount import count_conversation
from ..front import Front
from . import GeminiDialect, _path_target
from .parse import parse_request, strip_model

__all__ = ["routes", "models_list"]

_VERSIONS = ("v1beta", "v1", "v1alpha")
_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
_MAX_OUTPUT = 64000


def _model_entry(name: str, display: str, description: str, context: int, most: int = 0) -> dict:
    return {"name": "models/" + name, "baseModelId": name, "version": "kiro", "displayName": display,
            "description": description, "inputTokenLimit": context, "outputTokenLimit": most or _MAX_OUTPUT,
            "supportedGenerationMethods": _METHODS, "thinking": True}


def models_list(models: list[ModelEntry]) -> dict:
    """The models in the Gemini shape."""
    return {"models": [_model_entry(m.id, m.display, f"{m.display}, served by Kiro.", m.context_window, m.max_output)
                       for m in models]}


class _GeminiRoute(Route):
    """Matches only requests that carry a Google API key (header or ?key=) or the google-genai
    client header: `/v1/models…` is shared with the Anthropic and OpenAI model lists."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE:
            return match, child
        headers = dict(scope.get("headers") or ())
        if b"x-goog-api-key" in headers or b"x-goog-api-client" in headers:
            return match, child
        query = scope.get("query_string") or b""
        if query.startswith(b"key=") or b"&key=" in query:
            return match, child
        return Match.NONE, {}


def routes(front: Front, dialect: GeminiDialect, catalog: Catalog) -> list[Route]:
    """Gemini clients name Gemini models: the catalogue maps those names (upstream/catalog.py)."""
    array_dialect = GeminiDialect(array=True)

    def unauthorized() -> Response:
        return error_response(dialect, GatewayError(
            "authentication", "API key not valid. Pass the gateway's apiKey as x-goog-api-key or ?key=."))

    async def post(request: Request) -> Response:
        if not front.authorized(request):
            return unauthorized()
        model, method = _path_target(request)
        if method == "generateContent":
            return await front.handle(request, dialect)
        if method == "streamGenerateContent":
            sse = request.query_params.get("alt", "").lower() == "sse"
            return await front.handle(request, dialect if sse else array_dialect)
        if method == "countTokens":
            try:
                return JSONResponse(count_tokens(await json_body(request), model))
            except GatewayError as e:
                return error_response(dialect, e)
        what = f"method {method!r}" if method else "a method (…/models/{model}:generateContent)"
        return error_response(dialect, GatewayError(
            "not_found", f"This gateway does not support {what}; it serves generateContent, "
                         "streamGenerateContent and countTokens."))

    async def list_models(request: Request) -> Response:
        if not front.authorized(request):
            return unauthorized()
        return JSONResponse(models_list(await catalog.listed()))

    async def get_model(request: Request) -> Response:
        if not front.authorized(request):
            return unauthorized()
        name = strip_model(request.path_params.get("rest", ""))
        resolved = catalog.resolve(name)
        if resolved is None:
            return error_response(dialect, GatewayError("not_found", f"models/{name} is not found."))
        return JSONResponse(_model_entry(name, name, f"Served by Kiro model {resolved.upstream_id}.",
                                         resolved.context_window))

    out: list[Route] = []
    for version in _VERSIONS:
        base = f"/{version}/models"
        get = _GeminiRoute if version == "v1" else Route  # GET /v1/models… is shared
        out += [get(base, list_models, methods=["GET"]),
                get(base + "/{rest:path}", get_model, methods=["GET"]),
                Route(base + "/{rest:path}", post, methods=["POST"])]
    return out


def count_tokens(body: Any, model: str) -> dict:
    """`{"contents": …}` or `{"generateContentRequest": {…}}` → Gemini's countTokens answer."""
    if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
        inner = body["generateContentRequest"]
        named = inner.get("model")
        conv = parse_request(inner, named if isinstance(named, str) and named else model, counting=True)
    else:
        conv = parse_request(body, model, counting=True)
    total = count_conversation(conv)
    return {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}
