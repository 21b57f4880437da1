"""What every client dialect provides to the generic request handler (see app.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from starlette.requests import Request

from ..core.conversation import Conversation, GatewayError, ReplyEvent

__all__ = ["Dialect"]


class Dialect(Protocol):
    name: str
    stream_media_type: str  # "text/event-stream" for SSE dialects

    def parse(self, body: Any, request: Request) -> Conversation:
        """The request body (already JSON-decoded) → the neutral conversation."""

    def stream(self, conv: Conversation, batches: AsyncIterator[list[ReplyEvent]],
               input_estimate: int) -> AsyncIterator[bytes]:
        """Streamed reply bytes (SSE or the dialect's own framing)."""

    def whole(self, conv: Conversation, events: list[ReplyEvent], input_estimate: int) -> Any:
        """The complete, non-streamed reply: a JSON-able value, or its JSON bytes."""

    def error(self, err: GatewayError) -> tuple[int, bytes]:
        """(HTTP status, body) of an error in the dialect's own shape."""

    def stream_error(self, err: GatewayError) -> bytes:
        """An error inside an already started stream, in the dialect's own framing."""
