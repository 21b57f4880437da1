"""Reply events → Gemini GenerateContentResponse objects: streamed (SSE or a JSON array) or whole.

Each upstream batch becomes one response chunk; a function call is sent whole once its arguments
are complete (Gemini never streams partial arguments). Thought parts are sent only when the
request asked for them (`includeThoughts`); the thought signature rides on the first part after
the reasoning (a functionCall or text part), where Gemini CLI picks it up and echoes it.

The gateway's web searches show as the candidate's `groundingMetadata` (the queries, the results
as grounding chunks, and each cited stretch of text as a grounding support, in UTF-8 bytes of the
answer text), on the last chunk.

Keep-alives are a bare newline: both google-genai SDKs skip blank lines, while an SSE comment
would stall the JS SDK's `^\\s*data:` parser (and would break a JSON array).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

from .. import sse
from ...core.conversation import (
    CitedText,
    ContextOverflow,
    Conversation,
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
    SearchHit,
    Usage,
    WebSearchCall,
    WebSearchResults,
)
from ...core.reply import Block, collect
from ...core.tokencount import estimate
from .parse import strip_model
from .thoughts import encode_signature

__all__ = ["stream_sse", "stream_array", "whole_response", "error_object", "error_body", "STATUS"]

STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"end_turn": "STOP", "tool_use": "STOP", "stop_sequence": "STOP", "max_tokens": "MAX_TOKENS",
           "context_window_exceeded": "MAX_TOKENS"}
_KEEPALIVE = b"\n"
log = logging.getLogger("kiro_gateway")


def error_object(err: GatewayError) -> tuple[int, dict]:
    # Google has no 529: "overloaded" is its 503 UNAVAILABLE, which its clients retry.
    status = 503 if err.status == 529 else err.status
    name = STATUS.get(status) or ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    message = err.message
    if isinstance(err, ContextOverflow):  # the Gemini API's own wording
        message = (f"The input token count ({err.tokens}) exceeds the maximum number of tokens allowed "
                   f"({err.limit}).")
    return status, {"error": {"code": status, "message": message, "status": name}}


def error_body(err: GatewayError) -> bytes:
    return orjson.dumps(error_object(err)[1])


def _response_id() -> str:
    return secrets.token_urlsafe(16)


class _Reply:
    """Per-response state: open function calls, the pending thought signature, token counts."""

    __slots__ = ("include_thoughts", "calls", "thinking", "signature", "thought_tokens", "usage", "stop",
                 "model", "rid", "input_estimate", "grounding", "sources", "bytes")

    def __init__(self, conv: Conversation, input_estimate: int) -> None:
        # a GeminiConversation says whether thoughts are shown; any other conversation hides them
        self.include_thoughts = getattr(conv, "include_thoughts", False)
        self.calls: dict[str, Block] = {}
        self.thinking: list[str] = []
        self.signature: str | None = None
        self.thought_tokens = 0
        self.usage = Usage(input_estimate, 0)
        self.stop: Stop | None = None
        self.model = strip_model(conv.model)
        self.rid = _response_id()
        self.input_estimate = input_estimate
        self.grounding: dict[str, list] | None = None  # groundingMetadata, once a search was made
        self.sources: dict[str, int] = {}  # a result's URL → its index in groundingChunks
        self.bytes = 0  # UTF-8 bytes of answer text so far (where a grounding support starts)

    def signed(self, part: dict) -> dict:
        if self.signature is not None:
            part["thoughtSignature"] = self.signature
            self.signature = None
        return part

    def _end_thinking(self) -> None:
        if self.thinking:
            self.thought("".join(self.thinking))
            self.thinking = []

    def thought(self, text: str) -> None:
        """A finished thinking block: its signature waits for the next part."""
        self.signature = encode_signature(text)
        self.thought_tokens += estimate(text)

    def call_part(self, call: Block) -> dict:
        return self.signed({"functionCall": {"name": call.name, "args": call.arguments(), "id": call.id}})

    def close(self, parts: list[dict]) -> None:
        """A signature with no part after it rides on an empty thought part (when thoughts are shown)."""
        if self.signature is not None and self.include_thoughts:
            parts.append(self.signed({"text": "", "thought": True}))

    def text(self, text: str, parts: list[dict], source: SearchHit | None = None) -> None:
        """Answer text into this chunk's parts (merging runs of it); cited text also grounds."""
        last = parts[-1] if parts else None
        if last is not None and "text" in last and not last.get("thought"):
            last["text"] += text
        else:
            parts.append(self.signed({"text": text}))
        start = self.bytes
        self.bytes += len(text) if text.isascii() else len(text.encode())
        if source is not None:
            self._grounding()["groundingSupports"].append({
                "segment": {"startIndex": start, "endIndex": self.bytes, "text": text},
                "groundingChunkIndices": [self._source(source)]})

    def _grounding(self) -> dict[str, list]:
        if self.grounding is None:
            self.grounding = {"webSearchQueries": [], "groundingChunks": [], "groundingSupports": []}
        return self.grounding

    def _source(self, hit: SearchHit) -> int:
        index = self.sources.get(hit.url)
        if index is None:
            chunks = self._grounding()["groundingChunks"]
            index = self.sources[hit.url] = len(chunks)
            host = hit.url.split("://", 1)[-1].split("/", 1)[0]
            chunks.append({"web": {"uri": hit.url, "title": hit.title, "domain": host}})
        return index

    def searched(self, query: str | None, hits: list[SearchHit]) -> None:
        grounding = self._grounding()
        if query is not None and query not in grounding["webSearchQueries"]:
            grounding["webSearchQueries"].append(query)
        for hit in hits:
            self._source(hit)

    def feed(self, ev: ReplyEvent, parts: list[dict]) -> None:
        """Add `ev`'s contribution to this chunk's parts (merging runs of text)."""
        if type(ev) is TextDelta:
            if ev.text:
                self.text(ev.text, parts)
        elif type(ev) is CitedText:
            self.text(ev.text, parts, ev.source)
        elif type(ev) is WebSearchCall:
            self.searched(ev.query, [])
        elif type(ev) is WebSearchResults:
            self.searched(ev.query, ev.hits)
        elif type(ev) is ThinkingDelta:
            self.thinking.append(ev.text)
            if self.include_thoughts and ev.text:
                last = parts[-1] if parts else None
                if last is not None and last.get("thought") and "thoughtSignature" not in last:
                    last["text"] += ev.text
                else:
                    parts.append({"text": ev.text, "thought": True})
        elif type(ev) is ThinkingEnd:
            self._end_thinking()
        elif type(ev) is ToolCallStart:
            self.calls[ev.id] = Block("tool", id=ev.id, name=ev.name)
        elif type(ev) is ToolCallDelta:
            if ev.id in self.calls:
                self.calls[ev.id].text += ev.arguments
        elif type(ev) is ToolCallEnd:
            call = self.calls.pop(ev.id, None)
            if call is not None:
                parts.append(self.call_part(call))
        elif type(ev) is Usage:
            self.usage = ev
        elif type(ev) is Stop:
            for cid in list(self.calls):  # never lose a call whose end did not arrive
                self.feed(ToolCallEnd(cid), parts)
            self._end_thinking()
            self.close(parts)
            self.stop = ev

    def chunk(self, parts: list[dict], final: bool) -> dict:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        out: dict[str, Any] = {"candidates": [cand]}
        if final and self.stop is not None:
            cand["finishReason"] = _FINISH.get(self.stop.reason, "STOP")
            if self.grounding is not None:
                cand["groundingMetadata"] = self.grounding
            out["usageMetadata"] = self.usage_metadata()
        out["modelVersion"] = self.model
        out["responseId"] = self.rid
        return out

    def usage_metadata(self) -> dict:
        prompt = self.usage.input_tokens or self.input_estimate
        output = max(self.usage.output_tokens, 0)
        thoughts = min(self.thought_tokens, output)
        meta = {"promptTokenCount": prompt, "candidatesTokenCount": output - thoughts,
                "totalTokenCount": prompt + output}
        if thoughts:
            meta["thoughtsTokenCount"] = thoughts
        return meta


async def _chunks(conv: Conversation, batches: AsyncIterator[list[ReplyEvent]],
                  input_estimate: int) -> AsyncIterator[dict | None]:
    """Response objects in order; None is a keep-alive; an error ends the sequence."""
    reply = _Reply(conv, input_estimate)
    async for batch in batches:
        parts: list[dict] = []
        for ev in batch:
            if type(ev) is ErrorEvent:
                if parts:
                    yield reply.chunk(parts, False)
                yield error_object(GatewayError(ev.kind, ev.message))[1]
                return
            reply.feed(ev, parts)
        final = reply.stop is not None
        if parts or final:
            yield reply.chunk(parts, final)
        elif any(type(ev) is Ping for ev in batch):
            yield None
        if final:
            return


async def stream_sse(conv: Conversation, batches: AsyncIterator[list[ReplyEvent]],
                     input_estimate: int) -> AsyncIterator[bytes]:
    """`?alt=sse`: one `data: {...}` event per chunk."""
    async for obj in _chunks(conv, batches, input_estimate):
        yield _KEEPALIVE if obj is None else sse.data_only(obj)


async def stream_array(conv: Conversation, batches: AsyncIterator[list[ReplyEvent]],
                       input_estimate: int) -> AsyncIterator[bytes]:
    """Without `alt=sse`: one JSON array, `[{...}` then `,\\r\\n{...}` per chunk, then `]`.
    A failure still closes the array, so the body stays valid JSON."""
    yield b"["
    first = True
    try:
        async for obj in _chunks(conv, batches, input_estimate):
            if obj is None:
                yield _KEEPALIVE
                continue
            yield (b"" if first else b",\r\n") + orjson.dumps(obj)
            first = False
    except Exception as e:  # noqa: BLE001 - the array must be closed, so app.py's guard is not enough
        log.exception("stream failed")
        err = error_object(GatewayError("internal", f"gateway error: {type(e).__name__}"))[1]
        yield (b"" if first else b",\r\n") + orjson.dumps(err)
    yield b"]"


def whole_response(conv: Conversation, events: Iterable[ReplyEvent], input_estimate: int) -> dict:
    """The non-streamed answer. Raises GatewayError when the reply failed."""
    whole = collect(events, input_estimate)
    reply = _Reply(conv, input_estimate)
    parts: list[dict] = []
    for b in whole.blocks:
        if b.kind == "thinking":
            if reply.include_thoughts and b.text:
                parts.append({"text": b.text, "thought": True})
            reply.thought(b.text)
        elif b.kind == "text":
            if b.text:
                reply.text(b.text, parts, b.source)
        elif b.kind == "search":
            reply.searched(b.text, b.hits)
        else:
            parts.append(reply.call_part(b))
    reply.close(parts)
    reply.usage, reply.stop = whole.usage, whole.stop
    return reply.chunk(parts, True)
