"""Reply events → Anthropic Messages responses: SSE exactly as the API streams it, or one message.

Stream shape: message_start; content blocks with consecutive indexes (thinking → text / tool_use),
each start/delta…/stop; thinking closed by a signature_delta; message_delta with stop_reason and
usage; message_stop. Keep-alives are `event: ping`. A failure after the stream has started is an
`event: error` and the stream ends cleanly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import orjson

from .. import sse
from ...util.ids import random_hex
from ...core.reply import collect
from ...core.conversation import (
    CitedText,
    ErrorEvent,
    GatewayError,
    Ping,
    ReplyEvent,
    Stop,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    WebSearchCall,
    WebSearchResults,
)
from .websearch import citation, result_block, server_tool_usage, server_tool_use

__all__ = ["stream_message", "whole_message", "error_body", "ERROR_TYPES", "message_id"]

_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "rate_limit": "rate_limit_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
    "upstream": "api_error",
    "internal": "api_error",
}
_STOP = {"context_window_exceeded": "model_context_window_exceeded"}
_PING = sse.event("ping", {"type": "ping"})
_MESSAGE_STOP = sse.event("message_stop", {"type": "message_stop"})


def message_id() -> str:
    return "msg_" + random_hex(24)


def error_body(err: GatewayError) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": ERROR_TYPES.get(err.kind, "api_error"),
                                                    "message": err.message}})


def _usage(input_tokens: int, output_tokens: int, web_searches: int = 0) -> dict:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        **server_tool_usage(web_searches),
    }


class _Blocks:
    """Which content block is open, and its index."""

    __slots__ = ("index", "open", "_head")

    def __init__(self) -> None:
        self.index = -1
        self.open: str | None = None  # "text" | "cited" (text with a citation) | "thinking" | "tool_use"
        self._head = b""

    def start(self, kind: str, block: dict, out: list[bytes]) -> None:
        self.stop(out)
        self.index += 1
        self.open = kind
        self._head = _DELTA_HEAD + str(self.index).encode() + b',"delta":{"type":"'
        out.append(sse.event("content_block_start",
                             {"type": "content_block_start", "index": self.index, "content_block": block}))

    def stop(self, out: list[bytes]) -> None:
        if self.open is not None:
            out.append(sse.event("content_block_stop", {"type": "content_block_stop", "index": self.index}))
            self.open = None

    def delta(self, delta: dict) -> bytes:
        return sse.event("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})

    def text_delta(self, kind: bytes, text: str) -> bytes:
        """The stream's most frequent event, from a template: the same bytes as
        delta({"type": kind + "_delta", kind: text}), kind text or thinking."""
        return b"".join((self._head, kind, b'_delta","', kind, b'":', orjson.dumps(text), b"}}\n\n"))


async def stream_message(batches: AsyncIterator[list[ReplyEvent]], model: str, input_estimate: int,
                         msg_id: str | None = None) -> AsyncIterator[bytes]:
    """Anthropic SSE bytes, one chunk per upstream batch."""
    blocks = _Blocks()
    usage = Usage(input_estimate, 0)
    yield sse.event("message_start", {"type": "message_start", "message": {
        "id": msg_id or message_id(), "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": _usage(input_estimate, 1)}})
    async for batch in batches:
        out: list[bytes] = []
        for ev in batch:
            if type(ev) is TextDelta:
                if blocks.open != "text":
                    blocks.start("text", {"type": "text", "text": ""}, out)
                out.append(blocks.text_delta(b"text", ev.text))
            elif type(ev) is ThinkingDelta:
                if blocks.open != "thinking":
                    blocks.start("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
                out.append(blocks.text_delta(b"thinking", ev.text))
            elif type(ev) is ThinkingEnd:
                if blocks.open == "thinking":
                    out.append(blocks.delta({"type": "signature_delta", "signature": ev.signature}))
                    blocks.stop(out)
            elif type(ev) is ToolCallStart:
                blocks.start("tool_use", {"type": "tool_use", "id": ev.id, "name": ev.name, "input": {}}, out)
            elif type(ev) is ToolCallDelta:
                if blocks.open == "tool_use":
                    out.append(blocks.delta({"type": "input_json_delta", "partial_json": ev.arguments}))
            elif type(ev) is ToolCallEnd:
                if blocks.open == "tool_use":
                    blocks.stop(out)
            elif type(ev) is WebSearchCall:
                use = server_tool_use(ev.id, ev.query)
                blocks.start("server_tool_use", {**use, "input": {}}, out)
                out.append(blocks.delta({"type": "input_json_delta", "partial_json": orjson.dumps(use["input"]).decode()}))
                blocks.stop(out)
            elif type(ev) is WebSearchResults:
                blocks.start("web_search_tool_result", result_block(ev.id, ev.hits, ev.error), out)
                blocks.stop(out)
            elif type(ev) is CitedText:  # a text block of its own, its citation first
                blocks.start("cited", {"type": "text", "text": ""}, out)
                out.append(blocks.delta({"type": "citations_delta", "citation": citation(ev.source)}))
                out.append(blocks.text_delta(b"text", ev.text))
            elif type(ev) is Usage:
                usage = ev
            elif type(ev) is Stop:
                blocks.stop(out)
                out.append(sse.event("message_delta", {
                    "type": "message_delta",
                    "delta": {"stop_reason": _STOP.get(ev.reason, ev.reason), "stop_sequence": ev.stop_sequence},
                    # The input figure message_start announced: clients (Claude Code's meter) read
                    # both events, and Kiro's end-of-stream context usage also counts its own prompt.
                    "usage": _usage(input_estimate, usage.output_tokens, usage.web_searches)}))
                out.append(_MESSAGE_STOP)
            elif type(ev) is Ping:
                out.append(_PING)
            elif type(ev) is ErrorEvent:
                blocks.stop(out)
                out.append(sse.event("error", {"type": "error", "error": {
                    "type": ERROR_TYPES.get(ev.kind, "api_error"), "message": ev.message}}))
                yield b"".join(out)
                return
        if out:
            yield b"".join(out)


def whole_message(events: Iterable[ReplyEvent], model: str, input_estimate: int) -> dict:
    """The non-streaming answer built from the same events. Raises GatewayError on a stream error."""
    reply = collect(events, input_estimate)
    content: list[dict] = []
    for b in reply.blocks:
        if b.kind == "text":
            text = {"type": "text", "text": b.text}
            content.append(text if b.source is None else {**text, "citations": [citation(b.source)]})
        elif b.kind == "search":
            content += [server_tool_use(b.id, b.text), result_block(b.id, b.hits, b.error)]
        elif b.kind == "thinking":
            content.append({"type": "thinking", "thinking": b.text, "signature": b.signature})
        else:
            content.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.arguments()})
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _STOP.get(reply.stop.reason, reply.stop.reason),
        "stop_sequence": reply.stop.stop_sequence,
        "usage": _usage(reply.usage.input_tokens or input_estimate, reply.usage.output_tokens,
                        reply.usage.web_searches),
    }
