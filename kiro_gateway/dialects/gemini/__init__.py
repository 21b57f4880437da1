"""The Gemini API dialect (generateContent, streamGenerateContent, countTokens, models)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request

from .. import sse
from ...core.conversation import Conversation, GatewayError, ReplyEvent
from .parse import parse_request
from .render import error_body, error_object, stream_array, stream_sse, whole_response

__all__ = ["GeminiDialect", "parse_request", "error_body"]


def _path_target(request: Request) -> tuple[str, str]:
    """(model, method) of `…/models/{model}:{method}`; the model may contain '/' or ':'."""
    rest = request.path_params.get("rest", "")
    model, _, method = rest.rpartition(":")
    return model, method


class GeminiDialect:
    """`array=True`: streamGenerateContent without `alt=sse`, answered as one streamed JSON array."""

    name = "gemini"

    def __init__(self, array: bool = False) -> None:
        self.array = array
        self.stream_media_type = "application/json" if array else "text/event-stream"

    def parse(self, body: Any, request: Request) -> Conversation:
        model, method = _path_target(request)
        return parse_request(body, model, stream=method == "streamGenerateContent")

    def stream(self, conv: Conversation, batches: AsyncIterator[list[ReplyEvent]],
               input_estimate: int) -> AsyncIterator[bytes]:
        render = stream_array if self.array else stream_sse
        return render(conv, batches, input_estimate)

    def whole(self, conv: Conversation, events: list[ReplyEvent], input_estimate: int) -> Any:
        return whole_response(conv, events, input_estimate)

    def error(self, err: GatewayError) -> tuple[int, bytes]:
        return error_object(err)[0], error_body(err)

    def stream_error(self, err: GatewayError) -> bytes:
        obj = error_object(err)[1]
        # Only reached if the renderer itself failed; stream_array closes its array on its own.
        return b",\r\n" + orjson.dumps(obj) + b"]" if self.array else sse.data_only(obj)
