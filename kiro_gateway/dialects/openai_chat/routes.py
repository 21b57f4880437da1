"""The OpenAI Chat Completions HTTP surface: /v1/chat/completions, and the OpenAI-shaped models list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...kiro.models import KiroModel, catalog

if TYPE_CHECKING:
    from ...app.gateway import Gateway

__all__ = ["routes", "models_list", "model_entry"]


def model_entry(m: KiroModel, limits: tuple[int, int] | None = None) -> dict:
    window, most = limits or (m.context_window, m.max_output)
    return {"id": m.client_id, "object": "model", "created": m.created,
            "owned_by": "anthropic" if m.id.startswith("claude-") else "kiro",
            "context_window": window, "max_output_tokens": most}


def models_list(model_map: dict[str, str], served: dict[str, tuple[int, int]] | None = None) -> dict:
    """The Kiro models (those in `served` when given) under their client names, then the
    configured `modelMap` aliases of the models listed."""
    models = catalog(served)
    data = [model_entry(m, served.get(m.id) if served is not None else None) for m in models]
    seen = {d["id"] for d in data}
    created = {m.id: m.created for m in models}
    for alias, target in model_map.items():
        if alias.endswith("*") or alias in seen:  # prefix rules are not model names
            continue
        if served is not None and target not in created:
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
