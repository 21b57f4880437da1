"""The OpenAI Responses API dialect (what Codex CLI speaks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request

from ...conversation import Conversation, GatewayError, ReplyEvent
from ...http import raw_body
from ..openai_common import error_body, error_status
from .parse import ResponsesConversation, parse_request
from .render import ResponseRenderer, error_event, stream_response, whole_response
from .store import ResponseStore

__all__ = ["OpenAIResponsesDialect", "parse_request", "ResponseStore"]


class OpenAIResponsesDialect:
    name = "openai_responses"
    stream_media_type = "text/event-stream"

    def __init__(self, store: ResponseStore | None = None) -> None:
        self.store = store if store is not None else ResponseStore()

    def parse(self, body: Any, request: Request) -> Conversation:
        return parse_request(body, self.store, request.headers.get("session-id"), raw_body(request))

    def _renderer(self, conv: Conversation, input_estimate: int) -> ResponseRenderer:
        assert isinstance(conv, ResponsesConversation)
        prior, source = conv.prior, conv.source

        def save(response_id: str, response: bytes, output: list[dict]) -> None:
            # The output items are valid input items: the next turn re-reads the whole exchange.
            self.store.put(response_id, prior, source, orjson.dumps(output), response)

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
