"""The OpenAI Chat Completions dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from ...core.conversation import Conversation, GatewayError, ReplyEvent
from ..openai_common import error_body, error_status
from .parse import ChatConversation, parse_request
from .render import error_chunk, stream_chunks, whole_completion

__all__ = ["OpenAIChatDialect", "parse_request"]


class OpenAIChatDialect:
    name = "openai_chat"
    stream_media_type = "text/event-stream"

    def parse(self, body: Any, request: Request) -> Conversation:
        return parse_request(body)

    def stream(self, conv: Conversation, batches: AsyncIterator[list[ReplyEvent]],
               input_estimate: int) -> AsyncIterator[bytes]:
        include_usage = isinstance(conv, ChatConversation) and conv.include_usage
        return stream_chunks(batches, conv.model, input_estimate, include_usage)

    def whole(self, conv: Conversation, events: list[ReplyEvent], input_estimate: int) -> Any:
        return whole_completion(events, conv.model, input_estimate)

    def error(self, err: GatewayError) -> tuple[int, bytes]:
        return error_status(err), error_body(err)

    def stream_error(self, err: GatewayError) -> bytes:
        return error_chunk(err)
