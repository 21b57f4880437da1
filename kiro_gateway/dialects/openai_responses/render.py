"""Reply events → OpenAI Responses API: the SSE event stream, or one Response object.

Stream, as the API sends it and Codex / the openai SDK consume it: response.created,
response.in_progress; per output item output_item.added … output_item.done, with
content_part.added / output_text.delta / output_text.done / content_part.done for text,
function_call_arguments.delta / .done for calls, output_text.annotation.added for cited text,
web_search_call.in_progress / .searching / .completed for the gateway's searches, and for
thinking either reasoning summary events
(when `reasoning.summary` was asked for) or reasoning_text events; then response.completed (or
response.incomplete when the output was cut, response.failed on an error). Every event carries
`sequence_number`; keep-alives are SSE comments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import orjson

from .. import sse
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
from ...core.tokencount import estimate
from ..openai_common import error_payload, new_id, url_citation
from .parse import ResponsesConversation, encode_reasoning

__all__ = ["ResponseRenderer", "Save", "stream_response", "whole_response", "error_event"]

# (response id, the Response object serialised, its output items) → kept for previous_response_id
Save = Callable[[str, bytes, list[dict]], None]
_KEEPALIVE = sse.comment()
_TEXT_DELTA = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
log = logging.getLogger("kiro_gateway")


class ResponseRenderer:
    """Turns reply events into Responses events and tracks the Response object being built."""

    def __init__(self, conv: ResponsesConversation, input_estimate: int, save: Save | None = None) -> None:
        self.conv = conv
        self.id = new_id("resp_")
        self.created = int(time.time())
        self.input_estimate = input_estimate
        self.save = save
        self.seq = 0
        self.output: list[dict] = []  # finished items, in order
        self.open: dict | None = None  # the item being streamed
        self.buf: list[str] = []  # its text / arguments so far
        self.chars = 0  # the open message's characters so far (where a citation starts)
        self.annotations: list[dict] = []  # the open message's
        self.sources: list[dict] | None = None  # the open search's results (None: it failed)
        self.calls: dict[str, dict] = {}  # tool id → its open item
        self.usage = Usage(input_estimate, 0)
        self.reasoning_tokens = 0
        # The Response object echoes the request's instructions and tools (often 50+ KB). They go
        # out once, in the finished Response (completed / incomplete / failed, and what is stored):
        # the in-progress snapshots of created and in_progress leave them empty rather than send
        # the same 50 KB three times per turn (no client reads them there), serialised once.
        self._echoed: tuple | None = None
        self._delta_mid = b""  # the open message's part of its text-delta events (see text())

    # -- the Response object ------------------------------------------------------------------

    def _big_echo(self) -> tuple:
        """(instructions, tools), serialised when the request was parsed, for the finished Response."""
        if self._echoed is None:
            instructions, tools = self.conv.echo_json
            self._echoed = (orjson.Fragment(instructions), orjson.Fragment(tools))
        return self._echoed

    def response(self, status: str, error: dict | None = None, incomplete: str | None = None) -> dict:
        c = self.conv
        echo = c.echo
        done = status != "in_progress"
        instructions, tools = self._big_echo() if done else (None, [])
        inp = (self.usage.input_tokens or self.input_estimate) if done else 0
        usage = None
        if done:
            usage = {"input_tokens": inp, "input_tokens_details": {"cached_tokens": 0},
                     "output_tokens": self.usage.output_tokens,
                     "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
                     "total_tokens": inp + self.usage.output_tokens}
        return {
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "background": False, "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": instructions, "max_output_tokens": echo.get("max_output_tokens"),
            "model": c.model, "output": list(self.output) if done else [],
            "parallel_tool_calls": echo.get("parallel_tool_calls", True) is not False,
            "previous_response_id": c.previous_response_id,
            "reasoning": c.reasoning, "service_tier": echo.get("service_tier") or "default",
            "store": c.store, "temperature": echo.get("temperature") if echo.get("temperature") is not None else 1.0,
            "text": echo.get("text") or {"format": {"type": "text"}},
            "tool_choice": echo.get("tool_choice") or "auto", "tools": tools,
            "top_p": echo.get("top_p") if echo.get("top_p") is not None else 1.0,
            "truncation": echo.get("truncation") or "disabled", "usage": usage,
            "user": echo.get("user"), "metadata": echo.get("metadata") or {},
            "prompt_cache_key": echo.get("prompt_cache_key"),
        }

    # -- events -------------------------------------------------------------------------------

    def ev(self, name: str, payload: dict) -> bytes:
        data = {"type": name, "sequence_number": self.seq, **payload}
        self.seq += 1
        return sse.event(name, data)

    def start(self) -> list[bytes]:
        snapshot = orjson.Fragment(orjson.dumps(self.response("in_progress")))
        return [self.ev("response.created", {"response": snapshot}),
                self.ev("response.in_progress", {"response": snapshot})]

    def _index(self) -> int:
        return len(self.output)

    def _open(self, item: dict, out: list[bytes]) -> None:
        self.close(out)
        self.open = item
        self.buf = []
        self.chars = 0
        self.annotations = []
        out.append(self.ev("response.output_item.added", {"output_index": self._index(), "item": dict(item)}))

    def _text_open(self, out: list[bytes]) -> dict:
        item = {"id": new_id("msg_"), "type": "message", "status": "in_progress", "role": "assistant",
                "content": []}
        self._open(item, out)
        out.append(self.ev("response.content_part.added", {
            "item_id": item["id"], "output_index": self._index(), "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}))
        return item

    def _reasoning_open(self, out: list[bytes]) -> dict:
        item: dict[str, Any] = {"id": new_id("rs_"), "type": "reasoning", "summary": []}
        self._open(item, out)
        if self.conv.summary:
            out.append(self.ev("response.reasoning_summary_part.added", {
                "item_id": item["id"], "output_index": self._index(), "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}))
        return item

    def text(self, delta: str, out: list[bytes]) -> None:
        if self.open is None or self.open["type"] != "message":
            item = self._text_open(out)
            # The stream's most frequent event, written from a template: the same bytes as
            # ev("response.output_text.delta", {item_id, output_index, content_index, delta, logprobs}).
            self._delta_mid = (b',"item_id":' + orjson.dumps(item["id"]) + b',"output_index":'
                               + str(self._index()).encode() + b',"content_index":0,"delta":')
        self.buf.append(delta)
        self.chars += len(delta)
        out.append(b"".join((_TEXT_DELTA, str(self.seq).encode(), self._delta_mid, orjson.dumps(delta),
                             b',"logprobs":[]}\n\n')))
        self.seq += 1

    def cited(self, ev: CitedText, out: list[bytes]) -> None:
        """Text from a search result: the text, then its url_citation annotation."""
        self.text(ev.text, out)
        assert self.open is not None
        annotation = url_citation(self.chars - len(ev.text), self.chars, ev.source, nested=False)
        out.append(self.ev("response.output_text.annotation.added", {
            "item_id": self.open["id"], "output_index": self._index(), "content_index": 0,
            "annotation_index": len(self.annotations), "annotation": annotation}))
        self.annotations.append(annotation)

    def search_start(self, ev: WebSearchCall, out: list[bytes]) -> None:
        item = {"id": "ws_" + ev.id, "type": "web_search_call", "status": "in_progress",
                "action": {"type": "search", "query": ev.query}}
        self._open(item, out)
        self.sources = []
        ids = {"item_id": item["id"], "output_index": self._index()}
        out.append(self.ev("response.web_search_call.in_progress", ids))
        out.append(self.ev("response.web_search_call.searching", ids))

    def search_done(self, ev: WebSearchResults, out: list[bytes]) -> None:
        if self.open is None or self.open.get("id") != "ws_" + ev.id:
            self.search_start(WebSearchCall(ev.id, ev.query), out)
        self.sources = None if ev.error else [{"type": "url", "url": h.url} for h in ev.hits]
        self.close(out)

    def thinking(self, delta: str, out: list[bytes]) -> None:
        item = self.open
        if item is None or item["type"] != "reasoning":
            item = self._reasoning_open(out)
        self.buf.append(delta)
        self.reasoning_tokens += estimate(delta)
        ids = {"item_id": item["id"], "output_index": self._index()}
        if self.conv.summary:
            out.append(self.ev("response.reasoning_summary_text.delta", {**ids, "summary_index": 0, "delta": delta}))
        else:
            out.append(self.ev("response.reasoning_text.delta", {**ids, "content_index": 0, "delta": delta}))

    def tool_start(self, call_id: str, name: str, out: list[bytes]) -> None:
        item: dict[str, Any] = {"id": new_id("fc_"), "type": "function_call", "status": "in_progress",
                                "call_id": call_id, "name": name, "arguments": ""}
        ns = self.conv.namespaces.get(name)
        if ns:  # Codex dispatches a namespaced function by (namespace, name)
            item["namespace"], item["name"] = ns
        self._open(item, out)
        self.calls[call_id] = item

    def tool_delta(self, call_id: str, delta: str, out: list[bytes]) -> None:
        if self.open is None or self.calls.get(call_id) is not self.open:
            return
        self.buf.append(delta)
        out.append(self.ev("response.function_call_arguments.delta", {
            "item_id": self.open["id"], "output_index": self._index(), "delta": delta}))

    def close(self, out: list[bytes]) -> None:
        """Finish the open item: its .done events, then output_item.done."""
        item = self.open
        if item is None:
            return
        self.open = None
        text = "".join(self.buf)
        idx = self._index()
        ids = {"item_id": item["id"], "output_index": idx}
        kind = item["type"]
        if kind == "message":
            part = {"type": "output_text", "text": text, "annotations": self.annotations, "logprobs": []}
            out.append(self.ev("response.output_text.done", {**ids, "content_index": 0, "text": text, "logprobs": []}))
            out.append(self.ev("response.content_part.done", {**ids, "content_index": 0, "part": part}))
            item = {**item, "status": "completed", "content": [part]}
        elif kind == "reasoning":
            if self.conv.summary:
                part = {"type": "summary_text", "text": text}
                out.append(self.ev("response.reasoning_summary_text.done", {**ids, "summary_index": 0, "text": text}))
                out.append(self.ev("response.reasoning_summary_part.done", {**ids, "summary_index": 0, "part": part}))
                item = {**item, "summary": [part]}
            else:
                out.append(self.ev("response.reasoning_text.done", {**ids, "content_index": 0, "text": text}))
                item = {**item, "content": [{"type": "reasoning_text", "text": text}]}
            if self.conv.encrypted:
                item["encrypted_content"] = encode_reasoning(text)
        elif kind == "web_search_call":
            if self.sources is not None:
                out.append(self.ev("response.web_search_call.completed", ids))
            item = {**item, "status": "completed" if self.sources is not None else "failed",
                    "action": {**item["action"], "sources": self.sources or []}}
        else:
            args = text if text.strip() else "{}"
            out.append(self.ev("response.function_call_arguments.done", {**ids, "name": item["name"], "arguments": args}))
            item = {**item, "status": "completed", "arguments": args}
        self.output.append(item)
        out.append(self.ev("response.output_item.done", {"output_index": idx, "item": item}))

    def finish(self, stop: Stop, out: list[bytes]) -> bytes:
        """Close the response; returns the finished Response object, serialised once for the
        final event and a non-streamed reply."""
        self.close(out)
        if stop.reason == "max_tokens":
            name, resp = "response.incomplete", self.response("incomplete", incomplete="max_output_tokens")
        else:
            name, resp = "response.completed", self.response("completed")
        body = orjson.dumps(resp)  # often 50+ KB (the echo): framed without another copy of it
        out.append(b"".join((b"event: ", name.encode(), b'\ndata: {"type":"', name.encode(), b'","sequence_number":',
                             str(self.seq).encode(), b',"response":', body, b"}\n\n")))
        self.seq += 1
        if self.save is not None and self.conv.store:
            # The store keeps the request body, so the echo need not be kept twice.
            self.save(self.id, orjson.dumps({**resp, "instructions": None, "tools": []}), self.output)
        return body

    def fail(self, err: GatewayError, out: list[bytes]) -> None:
        self.close(out)
        payload = error_payload(err)
        error = {"code": payload["code"] or payload["type"], "message": err.message}
        out.append(self.ev("response.failed", {"response": self.response("failed", error=error)}))

    def feed(self, ev: ReplyEvent, out: list[bytes]) -> bool:
        """One reply event → events appended to `out`; False once the response is over."""
        if type(ev) is TextDelta:
            self.text(ev.text, out)
        elif type(ev) is ThinkingDelta:
            self.thinking(ev.text, out)
        elif type(ev) is ThinkingEnd:
            if self.open is not None and self.open["type"] == "reasoning":
                self.close(out)
        elif type(ev) is ToolCallStart:
            self.tool_start(ev.id, ev.name, out)
        elif type(ev) is ToolCallDelta:
            self.tool_delta(ev.id, ev.arguments, out)
        elif type(ev) is ToolCallEnd:
            if self.open is not None and self.calls.get(ev.id) is self.open:
                self.close(out)
        elif type(ev) is CitedText:
            self.cited(ev, out)
        elif type(ev) is WebSearchCall:
            self.search_start(ev, out)
        elif type(ev) is WebSearchResults:
            self.search_done(ev, out)
        elif type(ev) is Usage:
            self.usage = ev
        elif type(ev) is Stop:
            self.finish(ev, out)
            return False
        elif type(ev) is ErrorEvent:
            self.fail(GatewayError(ev.kind, ev.message), out)
            return False
        return True


async def stream_response(renderer: ResponseRenderer,
                          batches: AsyncIterator[list[ReplyEvent]]) -> AsyncIterator[bytes]:
    yield b"".join(renderer.start())
    try:
        async for batch in batches:
            out: list[bytes] = []
            going = True
            for ev in batch:
                if type(ev) is Ping:
                    out.append(_KEEPALIVE)
                elif not renderer.feed(ev, out):
                    going = False
                    break
            if out:
                yield b"".join(out)
            if not going:
                return
    except Exception as e:  # noqa: BLE001 - a proper response.failed needs this stream's sequence
        log.exception("responses stream failed")
        out = []
        renderer.fail(GatewayError("internal", f"gateway error: {type(e).__name__}"), out)
        yield b"".join(out)


def whole_response(renderer: ResponseRenderer, events: Iterable[ReplyEvent]) -> bytes:
    """The non-streamed Response object, serialised. Raises GatewayError on a stream error."""
    out: list[bytes] = []
    for ev in events:
        if type(ev) is ErrorEvent:
            raise GatewayError(ev.kind, ev.message)
        if type(ev) is Stop:
            return renderer.finish(ev, out)
        renderer.feed(ev, out)
    return renderer.finish(Stop("end_turn"), out)


def error_event(err: GatewayError) -> bytes:
    """An `error` event for a failure outside any renderer (the app's last line of defence)."""
    payload = error_payload(err)
    return sse.event("error", {"type": "error", "sequence_number": 0, "code": payload["code"],
                               "message": err.message, "param": None})
