"""The OpenAI Responses API dialect (what Codex CLI speaks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request

from ...core.conversation import Conversation, GatewayError, ReplyEvent
from ...web.http import raw_body
from ..openai_common import error_body, error_status
from .parse import ResponsesConversation, parse_request
from .render import ResponseRenderer, error_event, stream_response, whole_response
from .store import Backing, ResponseStore

__all__ = ["OpenAIResponsesDialect", "parse_request", "ResponseStore", "client_of"]


def client_of(request: Request) -> str:
    """Who is asking, as the gateway's admission put it in the request scope (the stored
    Responses' owner): a client key's id, or the gateway's own key."""
    return request.scope.get("kiro_gateway.client", "")


class OpenAIResponsesDialect:
    name = "openai_responses"
    stream_media_type = "text/event-stream"

    def __init__(self, store: ResponseStore | None = None, backing: Backing | None = None) -> None:
        self.store = store if store is not None else ResponseStore(backing=backing)

    async def prepare(self, body: Any, request: Request) -> None:
        """Before parsing: bring the Response this request continues into memory (from the state
        store, after a restart or from another process)."""
        prev = body.get("previous_response_id") if isinstance(body, dict) else None
        if isinstance(prev, str) and prev:
            try:
                await self.store.load(prev, client_of(request))
            except Exception:  # noqa: BLE001 - the store is unreachable: answered as not found by parse
                raise GatewayError("upstream", "The gateway's state store is unreachable, so the previous "
                                   "response cannot be read; try again shortly.", status=503) from None

    def parse(self, body: Any, request: Request) -> Conversation:
        return parse_request(body, self.store, request.headers.get("session-id"), raw_body(request),
                             client_of(request))

    def _renderer(self, conv: Conversation, input_estimate: int) -> ResponseRenderer:
        assert isinstance(conv, ResponsesConversation)
        prior, source, owner, parent = conv.prior, conv.source, conv.owner, conv.previous_response_id

        def save(response_id: str, response: bytes, output: list[dict]) -> None:
            # The output items are valid input items: the next turn re-reads the whole exchange.
            self.store.put(response_id, prior, source, orjson.dumps(output), response, owner, parent)

        return ResponseRenderer(conv, input_estimate, save)

    def stream(self, conv: Conversation, batches: AsyncIterator[list[ReplyEvent]],
               input_estimate: int) -> AsyncIterator[bytes]:
        return stream_response(self._renderer(conv, input_estimate), batches)

    def whole(self, conv: Conversation, events: list[ReplyEvent], input_estimate: int) -> Any:
        return whole_response(self._renderer(conv, input_estimate), events)

    def error(self, err: GatewayError) -> tuple[int, bytes]:
        return error_status(err), error_body(err)

    def stream_error(self, err: GatewayError) -> bytes:
        return error_event(err)
