"""Server-sent events framing, shared by the dialects that stream SSE."""

from __future__ import annotations

import orjson

__all__ = ["event", "data_only", "comment"]

_dumps = orjson.dumps


def event(name: str, payload: object) -> bytes:
    """`event: NAME` + `data: JSON` (Anthropic, OpenAI Responses)."""
    return b"".join((b"event: ", name.encode(), b"\ndata: ", _dumps(payload), b"\n\n"))


def data_only(payload: object) -> bytes:
    """`data: JSON` alone (OpenAI Chat Completions, Gemini)."""
    return b"".join((b"data: ", _dumps(payload), b"\n\n"))


def comment(text: str = "keep-alive") -> bytes:
    return b": " + text.encode() + b"\n\n"
