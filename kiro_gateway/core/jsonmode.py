"""JSON mode: when a client asked for a JSON answer, make sure the text it gets is just the JSON.

Kiro has no structured-output switch, so the request asks for JSON in the prompt (kiro/request.py)
and this filter, applied to the reply events, holds the text back until the end and strips what
models wrap JSON in (markdown fences, a sentence before or after). Thinking and tool calls pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

from .conversation import ReplyEvent, Stop, TextDelta, Usage

__all__ = ["extract_json", "json_only"]

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```\s*$", re.S)
_decoder = json.JSONDecoder()


def extract_json(text: str) -> str:
    """The JSON value in `text`, or `text` unchanged when there is none."""
    s = text.strip()
    m = _FENCE.match(s)
    if m:
        s = m.group(1).strip()
    try:
        json.loads(s)
        return s
    except ValueError:
        pass
    for i, ch in enumerate(s):
        if ch in "{[":
            try:
                _, end = _decoder.raw_decode(s, i)
                return s[i:end]
            except ValueError:
                continue
    return text


async def json_only(batches: AsyncIterator[list[ReplyEvent]]) -> AsyncIterator[list[ReplyEvent]]:
    parts: list[str] = []
    async for batch in batches:
        out: list[ReplyEvent] = []
        for ev in batch:
            if isinstance(ev, TextDelta):
                parts.append(ev.text)
            elif isinstance(ev, (Usage, Stop)) and parts:
                out.append(TextDelta(extract_json("".join(parts))))
                parts = []
                out.append(ev)
            else:
                out.append(ev)
        if out:
            yield out
