"""The Responses API's HTTP surface: POST /v1/responses, GET/DELETE /v1/responses/{id},
POST /v1/responses/input_tokens."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...core.conversation import GatewayError
from ...web.http import JSONResponse, error_response, json_body
from ...core.tokencount import count_conversation
from ..front import Front
from . import OpenAIResponsesDialect, client_of
from .parse import parse_request

__all__ = ["routes"]


def routes(front: Front, dialect: OpenAIResponsesDialect) -> list[Route]:
    store = dialect.store

    async def create(request: Request) -> Response:
        return await front.handle(request, dialect)

    async def stored(request: Request) -> Response:
        try:
            front.client(request)
            rid, owner = request.path_params["response_id"], client_of(request)
            try:
                found = await (store.delete(rid, owner) if request.method == "DELETE" else store.load(rid, owner))
            except Exception:  # noqa: BLE001 - the state store is unreachable
                raise GatewayError("upstream", "The gateway's state store is unreachable; try again shortly.",
                                   status=503) from None
            if not found:  # another client's Response is, to this one, no Response at all
                raise GatewayError("not_found", f"Response with id '{rid}' not found.")
            if request.method == "DELETE" or found is True:
                return JSONResponse({"id": rid, "object": "response.deleted", "deleted": True})
            return JSONResponse(found.response)
        except GatewayError as e:
            return error_response(dialect, e)

    async def input_tokens(request: Request) -> Response:
        try:
            front.client(request)
            body = await json_body(request)
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
