"""Reply events → OpenAI Chat Completions: `chat.completion.chunk` SSE or one `chat.completion`.

Stream shape (as OpenAI streams it; tests/dialects/test_openai_chat.py): a first chunk with the role; `content` and
`reasoning_content` deltas; each tool call opens with index, id, type and name and empty
arguments, then argument fragments under the same index; a last chunk with `finish_reason`; with
`stream_options.include_usage`, one more chunk with empty `choices` and the usage (earlier chunks
carry `usage: null`); then `data: [DONE]`. Keep-alives are SSE comments; a failure after the
stream has started is a `data: {"error": ...}` chunk, which the openai SDK raises as an APIError.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable

from .. import sse
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
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from ...core.tokencount import estimate
from ..openai_common import error_payload, new_id, url_citation

__all__ = ["stream_chunks", "whole_completion", "error_chunk", "FINISH", "usage_dict"]

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
          "context_window_exceeded": "length"}
_DONE = b"data: [DONE]\n\n"
_KEEPALIVE = sse.comment()


def usage_dict(input_tokens: int, output_tokens: int, reasoning_tokens: int) -> dict:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }


async def stream_chunks(batches: AsyncIterator[list[ReplyEvent]], model: str, input_estimate: int,
                        include_usage: bool) -> AsyncIterator[bytes]:
    cid = new_id("chatcmpl-")
    created = int(time.time())
    head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None}
    if include_usage:
        head["usage"] = None

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return sse.data_only({**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                   "finish_reason": finish}]})

    tool_index: dict[str, int] = {}
    usage = Usage(input_estimate, 0)
    reasoning = 0
    at = 0  # characters of content so far, where a citation starts
    annotations: list[dict] = []
    yield chunk({"role": "assistant", "content": ""})
    async for batch in batches:
        out: list[bytes] = []
        for ev in batch:
            if type(ev) is TextDelta:
                at += len(ev.text)
                out.append(chunk({"content": ev.text}))
            elif type(ev) is CitedText:
                annotations.append(url_citation(at, at + len(ev.text), ev.source, nested=True))
                at += len(ev.text)
                out.append(chunk({"content": ev.text}))
            elif type(ev) is ThinkingDelta:
                reasoning += estimate(ev.text)
                out.append(chunk({"reasoning_content": ev.text}))
            elif type(ev) is ToolCallStart:
                i = tool_index[ev.id] = len(tool_index)
                out.append(chunk({"tool_calls": [{"index": i, "id": ev.id, "type": "function",
                                                  "function": {"name": ev.name, "arguments": ""}}]}))
            elif type(ev) is ToolCallDelta:
                if ev.id in tool_index:
                    out.append(chunk({"tool_calls": [{"index": tool_index[ev.id],
                                                      "function": {"arguments": ev.arguments}}]}))
            elif type(ev) is Usage:
                usage = ev
            elif type(ev) is Stop:
                if annotations:  # in one delta: the SDK's accumulator takes a list of them only once
                    out.append(chunk({"annotations": annotations}))
                out.append(chunk({}, FINISH.get(ev.reason, "stop")))
                if include_usage:
                    inp = usage.input_tokens or input_estimate
                    out.append(sse.data_only({**head, "choices": [],
                                              "usage": usage_dict(inp, usage.output_tokens, reasoning)}))
                out.append(_DONE)
            elif type(ev) is Ping:
                out.append(_KEEPALIVE)
            elif type(ev) is ErrorEvent:
                out.append(error_chunk(GatewayError(ev.kind, ev.message)))
                yield b"".join(out)
                return
        if out:
            yield b"".join(out)


def whole_completion(events: Iterable[ReplyEvent], model: str, input_estimate: int) -> dict:
    """The non-streaming answer built from the same events. Raises GatewayError on a stream error."""
    reply = collect(events, input_estimate)
    usage, stop = reply.usage, reply.stop
    texts, thinking = reply.text(), reply.thinking()
    calls = {b.id: {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": b.text if b.text.strip() else "{}"}}
             for b in reply.tools()}
    message: dict = {"role": "assistant", "content": texts if texts or not calls else None,
                     "refusal": None}
    if thinking:
        message["reasoning_content"] = thinking
    citations = reply.citations()
    if citations:
        message["annotations"] = [url_citation(c.start, c.end, c.source, nested=True) for c in citations]
    if calls:
        message["tool_calls"] = list(calls.values())
    inp = usage.input_tokens or input_estimate
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": FINISH.get(stop.reason, "stop")}],
        "usage": usage_dict(inp, usage.output_tokens, estimate(thinking)),
        "system_fingerprint": None,
    }


def error_chunk(err: GatewayError) -> bytes:
    return sse.data_only({"error": error_payload(err)})
