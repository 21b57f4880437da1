"""The OpenAI Chat Completions HTTP surface: /v1/chat/completions, and the OpenAI-shaped models list."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...core.models import ModelEntry
from ..front import Front
from . import OpenAIChatDialect

__all__ = ["routes", "models_list", "model_entry"]


def model_entry(m: ModelEntry) -> dict:
    return {"id": m.id, "object": "model", "created": m.created,
            "owned_by": "anthropic" if m.upstream_id.startswith("claude-") else "kiro",
            "context_window": m.context_window, "max_output_tokens": m.max_output}


def models_list(models: list[ModelEntry], aliases: Sequence[tuple[str, ModelEntry]] = ()) -> dict:
    """The models under their client names, then the operator's `modelMap` names for them."""
    data = [model_entry(m) for m in models]
    seen = {d["id"] for d in data}
    for alias, m in aliases:
        if alias not in seen:
            seen.add(alias)
            data.append({"id": alias, "object": "model", "created": m.created, "owned_by": "kiro-gateway"})
    return {"object": "list", "data": data}


def routes(front: Front, dialect: OpenAIChatDialect) -> list[Route]:
    async def completions(request: Request) -> Response:
        return await front.handle(request, dialect)

    # A base URL with a path prefix (…/openai/v1) keeps working.
    return [Route(prefix + "/v1/chat/completions", completions, methods=["POST"])
            for prefix in ("", "/{prefix:path}")]
