"""The Responses API's HTTP surface: POST /v1/responses, GET/DELETE /v1/responses/{id},
POST /v1/responses/input_tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...core.conversation import GatewayError
from ...web.http import JSONResponse, error_response, read_json
from ...core.tokencount import count_conversation
from . import client_of
from .parse import parse_request

if TYPE_CHECKING:
    from ...app.gateway import Gateway

__all__ = ["routes"]


def routes(gw: "Gateway") -> list[Route]:
    dialect = gw.dialects["openai_responses"]
    store = dialect.store  # type: ignore[attr-defined]

    async def create(request: Request) -> Response:
        return await gw.handle(request, dialect)

    async def stored(request: Request) -> Response:
        try:
            gw.client(request)
            rid, owner = request.path_params["response_id"], client_of(request)
            try:
                found = await (store.delete(rid, owner) if request.method == "DELETE" else store.load(rid, owner))
            except Exception:  # noqa: BLE001 - the state store is unreachable
                raise GatewayError("upstream", "The gateway's state store is unreachable; try again shortly.",
                                   status=503) from None
            if not found:  # another client's Response is, to this one, no Response at all
                raise GatewayError("not_found", f"Response with id '{rid}' not found.")
            if request.method == "DELETE":
                return JSONResponse({"id": rid, "object": "response.deleted", "deleted": True})
            return JSONResponse(found.response)
        except GatewayError as e:
            return error_response(dialect, e)

    async def input_tokens(request: Request) -> Response:
        try:
            gw.client(request)
            body = await read_json(request)
            await dialect.prepare(body, request)
            conv = parse_request(body, store, owner=client_of(request))
            return JSONResponse({"object": "response.input_tokens", "input_tokens": count_conversation(conv)})
        except GatewayError as e:
            return error_response(dialect, e)

    out = []
    # A base URL with a path prefix (…/openai/v1) keeps working.
    for prefix in ("", "/{prefix:path}"):
        out += [Route(prefix + "/v1/responses", create, methods=["POST"]),
                Route(prefix + "/v1/responses/input_tokens", input_tokens, methods=["POST"]),
                Route(prefix + "/v1/responses/{response_id}", stored, methods=["GET", "DELETE"])]
    return out
