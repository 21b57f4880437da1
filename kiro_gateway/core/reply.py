"""A whole reply gathered from its events: what every non-streaming renderer builds from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from ..util.jsondepth import too_deep

from .conversation import (
    CitedText,
    ErrorEvent,
    GatewayError,
    ReplyEvent,
    SearchError,
    SearchHit,
    Stop,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    WebSearchCall,
    WebSearchResults,
)

__all__ = ["Block", "Reply", "collect", "Citation"]


@dataclass(slots=True)
class Block:
    kind: Literal["text", "thinking", "tool", "search"]
    text: str = ""  # text, thinking, a tool call's raw JSON arguments, or a search's query
    signature: str = ""  # thinking
    id: str = ""  # tool, search
    name: str = ""  # tool
    source: SearchHit | None = None  # text drawn from this search result (CitedText)
    hits: list[SearchHit] = field(default_factory=list)  # search
    error: SearchError | None = None  # search

    def arguments(self) -> dict[str, Any]:
        """A tool call's arguments as an object ({} when empty or not JSON)."""
        if not self.text.strip():
            return {}
        try:
            value = orjson.loads(self.text)
        except orjson.JSONDecodeError:
            return {}
        if too_deep(value):  # could not be written back into a reply
            return {}
        return value if isinstance(value, dict) else {"value": value}


@dataclass(slots=True)
class Reply:
    blocks: list[Block] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    stop: Stop = field(default_factory=lambda: Stop("end_turn"))

    def text(self) -> str:
        return "".join(b.text for b in self.blocks if b.kind == "text")

    def thinking(self) -> str:
        return "".join(b.text for b in self.blocks if b.kind == "thinking")

    def tools(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "tool"]

    def citations(self) -> list[Citation]:
        """Where the answer text cites a search result: (start, end) in `text()`, in characters."""
        out: list[Citation] = []
        at = 0
        for b in self.blocks:
            if b.kind == "text":
                if b.source is not None:
                    out.append(Citation(at, at + len(b.text), b.source))
                at += len(b.text)
        return out


@dataclass(slots=True)
class Citation:
    start: int
    end: int
    source: SearchHit


def collect(events: Iterable[ReplyEvent], input_estimate: int) -> Reply:
    """Consecutive deltas of a kind join into one block. Raises GatewayError on a stream error."""
    reply = Reply(usage=Usage(input_estimate, 0))
    blocks = reply.blocks
    tools: dict[str, Block] = {}
    for ev in events:
        if type(ev) is TextDelta:
            if blocks and blocks[-1].kind == "text" and blocks[-1].source is None:
                blocks[-1].text += ev.text
            else:
                blocks.append(Block("text", ev.text))
        elif type(ev) is CitedText:
            blocks.append(Block("text", ev.text, source=ev.source))
        elif type(ev) is WebSearchCall:
            blocks.append(Block("search", ev.query, id=ev.id))
        elif type(ev) is WebSearchResults:
            search = next((b for b in blocks if b.kind == "search" and b.id == ev.id), None)
            if search is None:
                search = Block("search", ev.query, id=ev.id)
                blocks.append(search)
            search.hits, search.error = ev.hits, ev.error
        elif type(ev) is ThinkingDelta:
            if blocks and blocks[-1].kind == "thinking" and not blocks[-1].signature:
                blocks[-1].text += ev.text
            else:
                blocks.append(Block("thinking", ev.text))
        elif type(ev) is ThinkingEnd:
            if blocks and blocks[-1].kind == "thinking":
                blocks[-1].signature = ev.signature
        elif type(ev) is ToolCallStart:
            tools[ev.id] = Block("tool", id=ev.id, name=ev.name)
            blocks.append(tools[ev.id])
        elif type(ev) is ToolCallDelta:
            if ev.id in tools:
                tools[ev.id].text += ev.arguments
        elif type(ev) is Usage:
            reply.usage = Usage(ev.input_tokens or input_estimate, ev.output_tokens, ev.credits, ev.web_searches)
        elif type(ev) is Stop:
            reply.stop = ev
        elif type(ev) is ErrorEvent:
            raise GatewayError(ev.kind, ev.message)
    return reply
