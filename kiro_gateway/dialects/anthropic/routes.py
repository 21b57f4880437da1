"""The Anthropic API's HTTP surface: /v1/messages, /v1/messages/count_tokens, the models list."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...core.conversation import GatewayError
from ...web.http import JSONResponse, error_response, read_json
from ...kiro.models import KiroModel, catalog
from ...core.tokencount import count_conversation
from .parse import parse_request

if TYPE_CHECKING:
    from ...app.gateway import Gateway

__all__ = ["routes", "models_list", "model_entry"]


def model_entry(m: KiroModel, limits: tuple[int, int] | None = None) -> dict:
    window, most = limits or (m.context_window, m.max_output)
    return {"type": "model", "id": m.client_id, "display_name": m.display,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m.created)),
            "max_input_tokens": window, "max_tokens": most}


def models_list(served: dict[str, tuple[int, int]] | None = None) -> dict:
    """The Kiro models (those in `served`, Kiro id -> limits, when given) in the Anthropic shape."""
    data = [model_entry(m, served.get(m.id) if served is not None else None)
            for m in catalog(served)]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def routes(gw: "Gateway") -> list[Route]:
    dialect = gw.dialects["anthropic"]

    async def messages(request: Request) -> Response:
        return await gw.handle(request, dialect)

    async def count_tokens(request: Request) -> Response:
        try:
            gw.check_auth(request)
            conv = parse_request(await read_json(request), counting=True)
            return JSONResponse({"input_tokens": count_conversation(conv)})
        except GatewayError as e:
            return error_response(dialect, e)

    out = []
    # A base URL with a path prefix (…/anthropic) keeps working: Claude Code keeps the prefix.
    for prefix in ("", "/{prefix:path}"):
        out += [Route(prefix + "/v1/messages", messages, methods=["POST"]),
                Route(prefix + "/v1/messages/count_tokens", count_tokens, methods=["POST"])]
    return out
