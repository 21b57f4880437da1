"""The Anthropic API's HTTP surface: /v1/messages, /v1/messages/count_tokens, the models list."""

from __future__ import annotations

import time
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...core.conversation import GatewayError
from ...core.models import ModelEntry
from ...core.tokencount import count_conversation
from ...web.http import JSONResponse, error_response, json_body
from ..front import Front
from . import AnthropicDialect
from .parse import parse_request

__all__ = ["routes", "models_list", "model_entry"]


def model_entry(m: ModelEntry) -> dict:
    return {"type": "model", "id": m.id, "display_name": m.display,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m.created)),
            "max_input_tokens": m.context_window, "max_tokens": m.max_output}


def models_list(models: list[ModelEntry]) -> dict:
    """The models in the Anthropic shape."""
    data = [model_entry(m) for m in models]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def routes(front: Front, dialect: AnthropicDialect) -> list[Route]:
    async def messages(request: Request) -> Response:
        return await front.handle(request, dialect)

    async def count_tokens(request: Request) -> Response:
        try:
            front.client(request)
            conv = parse_request(await json_body(request), counting=True)
            return JSONResponse({"input_tokens": count_conversation(conv)})
        except GatewayError as e:
            return error_response(dialect, e)

    out = []
    # A base URL with a path prefix (…/anthropic) keeps working: Claude Code keeps the prefix.
    for prefix in ("", "/{prefix:path}"):
        out += [Route(prefix + "/v1/messages", messages, methods=["POST"]),
                Route(prefix + "/v1/messages/count_tokens", count_tokens, methods=["POST"])]
    return out
