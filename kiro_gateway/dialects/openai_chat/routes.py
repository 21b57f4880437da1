"""The OpenAI Chat Completions HTTP surface: /v1/chat/completions, and the OpenAI-shaped models list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...kiro.models import KIRO_MODELS

if TYPE_CHECKING:
    from ...app import Gateway

__all__ = ["routes", "models_list"]


def models_list(model_map: dict[str, str]) -> dict:
    """The Kiro models under their client names, then the configured `modelMap` aliases."""
    data = [{"id": m.client_id, "object": "model", "created": m.created, "owned_by": "anthropic"}
            for m in KIRO_MODELS]
    seen = {d["id"] for d in data}
    created = {m.id: m.created for m in KIRO_MODELS}
    for alias, target in model_map.items():
        if alias.endswith("*") or alias in seen:  # prefix rules are not model names
            continue
        seen.add(alias)
        data.append({"id": alias, "object": "model", "created": created.get(target, 0),
                     "owned_by": "kiro-gateway"})
    return {"object": "list", "data": data}


def routes(gw: "Gateway") -> list[Route]:
    dialect = gw.dialects["openai_chat"]

    async def completions(request: Request) -> Response:
        return await gw.handle(request, dialect)

    # A base URL with a path prefix (…/openai/v1) keeps working.
    return [Route(prefix + "/v1/chat/completions", completions, methods=["POST"])
            for prefix in ("", "/{prefix:path}")]
