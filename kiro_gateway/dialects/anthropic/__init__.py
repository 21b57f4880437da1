"""The Anthropic Messages API dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from ...core.conversation import Conversation, GatewayError, ReplyEvent
from .parse import parse_request
from .render import error_body, stream_message, whole_message

__all__ = ["AnthropicDialect", "parse_request", "error_body"]


class AnthropicDialect:
    name = "anthropic"
    stream_media_type = "text/event-stream"

    def parse(self, body: Any, request: Request) -> Conversation:
        return parse_request(body, request.headers.get("x-claude-code-session-id"))

    def stream(self, conv: Conversation, batches: AsyncIterator[list[ReplyEvent]],
               input_estimate: int) -> AsyncIterator[bytes]:
        return stream_message(batches, conv.model, input_estimate)

    def whole(self, conv: Conversation, events: list[ReplyEvent], input_estimate: int) -> Any:
        return whole_message(events, conv.model, input_estimate)

    def error(self, err: GatewayError) -> tuple[int, bytes]:
        return err.status, error_body(err)

    def stream_error(self, err: GatewayError) -> bytes:
        return b"event: error\ndata: " + error_body(err) + b"\n\n"
