"""Decoded Kiro event-stream messages → neutral reply events (docs/kiro-protocol.md, “Event payloads” / “Thinking” / “Stop reason and usage”).

One `ReplyMapper` per upstream response. It is fed raw bytes (it owns the frame decoder), and
returns the reply events they complete; `finish()` closes open blocks and reports usage and the
stop reason. Text is split into thinking and answer here, tool names are mapped back to the
client's, and a thinking block gets an opaque signature that clients may echo back.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

import orjson

from ..util.jsondepth import too_deep

from ..core.conversation import (
    ErrorEvent,
    ErrorKind,
    ReplyEvent,
    Stop,
    StopReason,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from ..core.tokencount import estimate
from .eventstream import EventStreamError, EventStreamDecoder, Frame
from .thinking import TEXT, ThinkingSplitter
from .tools import ToolNames

__all__ = ["ReplyMapper", "signature_for"]

log = logging.getLogger("kiro_gateway.kiro")

_CONTENT_TOO_LONG = ("ContentLengthExceededException", "CONTENT_LENGTH_EXCEEDS")
# Event types that carry nothing a client needs (docs/kiro-protocol.md, "Reply events").
# Kiro's own stop reasons that mean the answer was cut short, taken as they are.
_CUT_SHORT: dict[str, StopReason] = {"max_tokens": "max_tokens", "context_window_exceeded": "context_window_exceeded",
                                     "stop_sequence": "stop_sequence"}
_QUIET = frozenset({"followupPromptEvent", "codeReferenceEvent", "supplementaryWebLinksEvent",
                    "messageMetadataEvent", "citationEvent", "invalidStateEvent", "intentsEvent",
                    "interactionComponentsEvent", "dryRunSucceedEvent", "codeEvent", "messageStopEvent"})
_SEEN_UNKNOWN: set[str] = set()  # unknown event types already logged (once each per process)
_KIRO_STOPS = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
               "stop_sequence": "stop_sequence", "model_context_window_exceeded": "context_window_exceeded",
               "context_window_exceeded": "context_window_exceeded"}
_THROTTLE = ("Throttling", "TooManyRequests", "ServiceQuotaExceeded")


def signature_for(thinking: str) -> str:
    """An opaque, stable signature for a thinking block (Claude Code drops unsigned thinking)."""
    digest = hashlib.sha256(b"kiro-gateway/thinking\x00" + thinking.encode("utf-8")).digest()
    return "kg1" + base64.b64encode(digest).decode("ascii")


class ReplyMapper:
    __slots__ = (
        "decoder", "splitter", "names", "context_window", "out_tokens", "credits",
        "context_pct", "open_tools", "tool_args", "had_tool", "had_text", "had_thinking",
        "stop_reason", "_thinking_text", "finished", "errored", "estimated_input", "broken_tools",
        "kiro_input", "kiro_output", "kiro_stop",
    )

    def __init__(self, names: ToolNames, thinking: bool, context_window: int,
                 estimated_input: int = 1) -> None:
        self.decoder = EventStreamDecoder()
        self.estimated_input = estimated_input  # used when Kiro does not report context usage
        self.splitter = ThinkingSplitter(thinking)
        self.names = names
        self.context_window = context_window
        self.out_tokens = 0
        self.credits: float | None = None
        self.context_pct: float | None = None
        self.open_tools: dict[str, str] = {}  # id → client name
        self.tool_args: dict[str, list[str]] = {}  # id → argument fragments (to check at the end)
        self.broken_tools: set[str] = set()  # ids whose arguments could not be written as JSON
        self.had_tool = False
        self.had_text = False
        self.had_thinking = False
        self.stop_reason: StopReason | None = None
        self._thinking_text: list[str] = []
        self.finished = False
        self.errored = False
        self.kiro_input: int | None = None  # Kiro's own figures (metadataEvent), when it gives them
        self.kiro_output: int | None = None
        self.kiro_stop: str | None = None

    # -- input -------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[ReplyEvent]:
        out: list[ReplyEvent] = []
        for msg in self.decoder.feed(chunk):
            self._frame(msg, out)
        if self.decoder.lost:  # a message failed its checksum: what the client would get has a hole
            raise EventStreamError("a message of Kiro's stream failed its checksum")
        return _coalesce(out) if len(out) > 1 else out

    def _frame(self, msg: Frame, out: list[ReplyEvent]) -> None:
        headers = msg.headers
        mtype = headers.get(":message-type", "event")
        if mtype == "event":
            etype = headers.get(":event-type")
            try:
                data = orjson.loads(msg.payload) if msg.payload else {}
            except orjson.JSONDecodeError:
                return
            if type(data) is not dict:
                return
            if etype == "assistantResponseEvent":
                splitter = self.splitter
                content = data.get("content")
                # The answer's text once thinking is settled (most frames): straight to a delta.
                if splitter.state == TEXT and not splitter.strip_lead and type(content) is str and content \
                        and "followupPrompt" not in data and not self._thinking_text:
                    self.had_text = True
                    self.out_tokens += estimate(content)
                    out.append(TextDelta(content))
                    return
                self._text(data, out)
            elif etype == "toolUseEvent":
                self._tool(data, out)
            elif etype == "contextUsageEvent":
                pct = data.get("contextUsagePercentage")
                if isinstance(pct, (int, float)):
                    self.context_pct = float(pct)
            elif etype == "meteringEvent":
                usage = data.get("usage")
                if isinstance(usage, (int, float)):
                    self.credits = (self.credits or 0.0) + float(usage)
            elif etype == "reasoningContentEvent":  # native reasoning: a thinking block
                text = data.get("text") or data.get("content")
                if isinstance(text, str) and text:
                    self._settle_text(out)
                    self._thinking_piece(text, out)
            elif etype == "metadataEvent":
                self._metadata(data)
            elif etype is not None and etype not in _QUIET and etype not in _SEEN_UNKNOWN \
                    and len(_SEEN_UNKNOWN) < 100:  # an event without a type is skipped unlogged
                _SEEN_UNKNOWN.add(etype)
                log.info("Kiro sent an event of a type this gateway does not know (%s); skipped", etype[:80])
        elif mtype == "exception":
            etype = str(msg.headers.get(":exception-type", ""))
            text = _message_text(msg.payload)
            if any(k in etype or k in text for k in _CONTENT_TOO_LONG):
                self.stop_reason = "max_tokens"
            else:
                self.errored = True
                kind: ErrorKind = "rate_limit" if any(k in etype for k in _THROTTLE) else "upstream"
                out.append(ErrorEvent(kind, f"Kiro {etype or 'exception'}: {text}"[:500]))
        elif mtype == "error":
            code = str(msg.headers.get(":error-code", ""))
            self.errored = True
            out.append(ErrorEvent("upstream", f"Kiro error {code}: {_message_text(msg.payload)}"[:500]))

    def _metadata(self, data: dict[str, Any]) -> None:
        """metadataEvent: Kiro's token usage, context percentage and stop reason."""
        usage = data.get("tokenUsage")
        if isinstance(usage, dict):
            for key, attr in (("inputTokens", "kiro_input"), ("outputTokens", "kiro_output")):
                v = usage.get(key)
                if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                    setattr(self, attr, v)
            pct = usage.get("contextUsagePercentage")
            if isinstance(pct, (int, float)) and not isinstance(pct, bool):
                self.context_pct = float(pct)
        stop = data.get("stopReason")
        if isinstance(stop, str):
            self.kiro_stop = _KIRO_STOPS.get(stop.lower())

    def _text(self, data: dict[str, Any], out: list[ReplyEvent]) -> None:
        if "followupPrompt" in data:
            return
        content = data.get("content")
        if not isinstance(content, str) or not content:
            return
        for kind, piece in self.splitter.feed(content):
            self._piece(kind, piece, out)

    def _piece(self, kind: str, piece: str, out: list[ReplyEvent]) -> None:
        if kind == "text":
            self._end_thinking(out)
            self.had_text = True
            self.out_tokens += estimate(piece)
            out.append(TextDelta(piece))
        elif kind == "thinking":
            self._thinking_piece(piece, out)
        else:
            self._end_thinking(out)

    def _thinking_piece(self, piece: str, out: list[ReplyEvent]) -> None:
        self.had_thinking = True
        self._thinking_text.append(piece)
        self.out_tokens += estimate(piece)
        out.append(ThinkingDelta(piece))

    def _end_thinking(self, out: list[ReplyEvent]) -> None:
        if self._thinking_text:  # a thinking block is open
            out.append(ThinkingEnd(signature_for("".join(self._thinking_text))))
            self._thinking_text = []

    def _settle_text(self, out: list[ReplyEvent]) -> None:
        for kind, piece in self.splitter.finish():
            self._piece(kind, piece, out)

    def _tool(self, data: dict[str, Any], out: list[ReplyEvent]) -> None:
        tid = data.get("toolUseId")
        if not isinstance(tid, str) or not tid:
            return
        if tid not in self.open_tools:
            if tid in self.tool_args:  # already stopped: a late duplicate frame
                return
            self._settle_text(out)
            self._end_thinking(out)
            name = data.get("name")
            if not isinstance(name, str) or not name:
                return
            client_name = self.names.to_client(name)
            self.open_tools[tid] = client_name
            self.tool_args[tid] = []
            self.had_tool = True
            out.append(ToolCallStart(tid, client_name))
        frag = data.get("input")
        if isinstance(frag, dict):
            try:
                frag = orjson.dumps(frag).decode() if frag else ""
            except orjson.JSONEncodeError:  # nested past what JSON can be written back: unusable arguments
                self.broken_tools.add(tid)
                frag = ""
        if isinstance(frag, str) and frag:
            self.tool_args[tid].append(frag)
            self.out_tokens += (len(frag) + 3) >> 2
            out.append(ToolCallDelta(tid, frag))
        if data.get("stop"):
            del self.open_tools[tid]
            out.append(ToolCallEnd(tid))

    # -- end ---------------------------------------------------------------------------------

    def finish(self) -> list[ReplyEvent]:
        """Close open blocks; report usage and the stop reason."""
        out: list[ReplyEvent] = []
        if self.finished:
            return out
        self.finished = True
        self._settle_text(out)
        self._end_thinking(out)
        cut = bool(self.open_tools)  # a tool call Kiro never finished
        for tid in list(self.open_tools):
            del self.open_tools[tid]
            out.append(ToolCallEnd(tid))
        reason = self.stop_reason
        if reason is None and self.kiro_stop is not None:
            reason = _CUT_SHORT.get(self.kiro_stop)  # what Kiro says cut the answer short is not second-guessed
        if reason is None:
            if self.context_pct is not None and self.context_pct >= 100:
                reason = "context_window_exceeded"
            elif cut or self._truncated_tool_call():
                # Kiro cuts long outputs mid tool call (a big Write): say the output was cut off
                # rather than ask the client to run a call with broken arguments (docs/kiro-protocol.md, “Stop reason and usage”).
                reason = "max_tokens"
            elif self.had_tool:
                reason = "tool_use"
            elif self.had_thinking and not self.had_text:
                # Reasoning with no answer: the model ran out of room (kiro.rs does the same).
                reason = "max_tokens"
            else:
                reason = "end_turn"
        output_tokens = self.kiro_output if self.kiro_output else max(1, self.out_tokens)
        if self.kiro_input is not None:
            input_tokens = max(1, self.kiro_input)
        elif self.context_pct is not None:
            input_tokens = max(1, int(self.context_pct * self.context_window / 100) - self.out_tokens)
        else:
            input_tokens = self.estimated_input
        out.append(Usage(input_tokens, output_tokens, self.credits))
        out.append(Stop(reason))
        return out

    def _truncated_tool_call(self) -> bool:
        """Whether some tool call's arguments are not a JSON value the dialects can write back."""
        if self.broken_tools:
            return True
        for frags in self.tool_args.values():
            raw = "".join(frags)
            if raw.strip():
                try:
                    if too_deep(orjson.loads(raw)):
                        return True
                except orjson.JSONDecodeError:
                    return True
        return False

    def check_truncated(self) -> None:
        """Raise if the byte stream ended inside a frame."""
        self.decoder.raise_if_truncated()


def _coalesce(events: list[ReplyEvent]) -> list[ReplyEvent]:
    """Join runs of text (or thinking) deltas that arrived in one read into one delta each.

    Clients cannot tell (deltas are arbitrary slices of the text anyway), and every event saved is
    one less SSE event to serialise and send: a burst of 1000 frames costs one delta, not 1000.
    """
    out: list[ReplyEvent] = []
    run: list[str] = []
    kind: type | None = None
    for ev in events:
        t = type(ev)
        if t is kind:
            run.append(ev.text)  # type: ignore[union-attr]  # `kind` is only ever TextDelta or ThinkingDelta
            continue
        if run:
            out.append(kind(run[0] if len(run) == 1 else "".join(run)))  # type: ignore[misc]  # as above
            run = []
        if t is TextDelta or t is ThinkingDelta:
            kind = t
            run.append(ev.text)  # type: ignore[union-attr]  # checked just above, by exact type
        else:
            kind = None
            out.append(ev)
    if run:
        out.append(kind(run[0] if len(run) == 1 else "".join(run)))  # type: ignore[misc]  # as above
    return out


def _message_text(payload: bytes) -> str:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload[:300].decode("utf-8", "replace")
    if isinstance(data, dict):
        return str(data.get("message") or data.get("Message") or data)[:300]
    return str(data)[:300]

