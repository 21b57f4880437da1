"""What the two OpenAI dialects (Chat Completions, Responses) share: the error shape and its
statuses, field validation in OpenAI's `messages[0].content` style, data-URL images, tool-call
argument decoding, `tool_choice` and the JSON output format, reasoning effort → neutral Thinking,
`url_citation` annotations, and ids.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from ..core.conversation import ContextOverflow, GatewayError, ImagePart, SearchHit, Thinking, ToolCallPart, ToolChoice
from ..util.ids import random_hex
from .blocks import Wording

__all__ = [
    "bad", "req_str", "opt_str", "opt_int", "opt_number", "image_from_url", "tool_call",
    "thinking_for_effort", "error_status", "error_body", "error_payload", "new_id", "is_list",
    "tool_choice", "json_format", "WORDING", "url_citation",
]

# Neutral kind → (OpenAI error type, code). 401 and 404 are "invalid_request_error" in OpenAI too.
_ERRORS = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "permission": ("permission_error", "permission_denied"),
    "not_found": ("invalid_request_error", "not_found"),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "overloaded": ("server_error", "server_is_overloaded"),
    "timeout": ("server_error", "timeout"),
    "upstream": ("server_error", "upstream_error"),
    "internal": ("server_error", "internal_error"),
}
# OpenAI clients know 503 for "overloaded"; 529 is Anthropic's.
_STATUS_OVERRIDE = {529: 503}
# "messages[0].role: ..." → param "messages[0].role"
_PARAM = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)((?:;[\w-]+=[^;,]*)*);base64,", re.I)


def bad(where: str, what: str, code: str | None = None) -> GatewayError:
    err = GatewayError("invalid_request", f"{where}: {what}" if where else what)
    if code:
        err.openai_code = code  # type: ignore[attr-defined]  # read by error_payload
    return err


# How both APIs word a malformed content array (blocks.py).
WORDING = Wording(bad, "Expected a string or an array of content parts.", "Expected an object.", "Field required")


def stream_flag(v: Any) -> bool:
    """`stream`: a boolean or null, as OpenAI checks it."""
    if v is None or isinstance(v, bool):
        return bool(v)
    raise bad("stream", "Invalid type for 'stream': expected a boolean.", "invalid_type")


def is_list(v: Any) -> bool:
    return isinstance(v, list)


def req_str(v: Any, where: str) -> str:
    if isinstance(v, str):
        return v
    raise bad(where, "Field required" if v is None else "Expected a string.")


def opt_str(v: Any, where: str) -> str | None:
    if v is None or isinstance(v, str):
        return v
    raise bad(where, "Expected a string.")


def opt_int(v: Any, where: str, minimum: int = 1) -> int | None:
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise bad(where, f"Expected an integer >= {minimum}.")
    return v


def opt_number(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise bad(where, "Expected a number.")
    return float(v)


def image_from_url(url: Any, where: str) -> ImagePart:
    """A `data:image/...;base64,` URL → ImagePart. Kiro takes only inline bytes (docs/kiro-protocol.md, “Images”)."""
    if not isinstance(url, str) or not url:
        raise bad(where, "Field required" if url is None else "Expected a string.")
    m = _DATA_URL.match(url)
    if not m:
        if url.startswith(("http://", "https://")):
            raise bad(where, "Image URLs are not supported by this gateway (Kiro accepts only inline "
                      "images): send the image as a base64 data URL (data:image/png;base64,...).")
        raise bad(where, "Expected a base64 data URL (data:image/png;base64,...).")
    media = m.group(1).lower()
    if not media.startswith("image/"):
        raise bad(where, f"Expected an image, got {media!r}.")
    data = "".join(url[m.end():].split())  # Kiro wants plain base64: no line breaks
    try:
        if not data or base64.b64decode(data, validate=True) == b"":
            raise ValueError("empty")
    except (binascii.Error, ValueError) as e:
        raise bad(where, "The data URL does not hold valid base64 image data.") from e
    return ImagePart(media, data)


def tool_call(call_id: str, name: str, raw: Any, where: str) -> ToolCallPart:
    """A function call from history; its `arguments` are a JSON string, as OpenAI sends them.
    Arguments that are not JSON were cut off when Kiro ended a long reply mid-call."""
    if raw is None or raw == "":
        return ToolCallPart(call_id, name, {})
    if isinstance(raw, dict):
        return ToolCallPart(call_id, name, raw)
    if not isinstance(raw, str):
        raise bad(where, "Expected a string holding a JSON object.")
    try:
        value = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return ToolCallPart.cut_off(call_id, name, len(raw))
    return ToolCallPart(call_id, name, value if isinstance(value, dict) else {"value": value})


def tool_choice(tc: Any, nested: bool) -> ToolChoice:
    """`tool_choice` → ToolChoice. The two APIs spell the object forms differently: Chat nests the
    details under a key named like the type (`{"type": "function", "function": {"name": ...}}`,
    `{"type": "allowed_tools", "allowed_tools": {"mode": ...}}`), `nested`; Responses has them
    at the top (a function's namespace, too, which its parser applies). An object of another type
    is a built-in tool Responses dropped, so the model chooses; Chat has no such tools: an error."""
    if tc is None or tc == "auto":
        return ToolChoice()
    if tc == "none":
        return ToolChoice("none")
    if tc == "required":
        return ToolChoice("any")
    if isinstance(tc, dict):
        kind = tc.get("type")
        inner = tc.get(kind) if nested and isinstance(kind, str) else tc
        if not isinstance(inner, dict):
            inner = {}
        if kind == "function":
            return ToolChoice("tool", req_str(inner.get("name"), "tool_choice.function.name" if nested
                                              else "tool_choice.name"))
        if kind == "allowed_tools":
            return ToolChoice("any" if inner.get("mode") == "required" else "auto")
        if not nested:
            return ToolChoice()
        raise bad("tool_choice", "Expected 'none', 'auto', 'required' or {\"type\": \"function\", ...}.")
    raise bad("tool_choice", "Expected 'none', 'auto', 'required' or {\"type\": \"function\", ...}." if nested
              else "Expected 'none', 'auto', 'required' or an object.")


def json_format(fmt: Any, where: str, nested: bool) -> dict | None:
    """The output format (Chat's `response_format`, Responses' `text.format`) → the JSON schema
    the reply must follow: None for plain text, {} for any JSON value. Chat nests a schema
    (`{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}`), `nested`, where
    it may be left out; Responses puts it at the top and requires it."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise bad(where, "Expected an object.")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {}
    if kind == "json_schema":
        if nested:
            js = fmt.get("json_schema")
            if not isinstance(js, dict):
                raise bad(f"{where}.json_schema", "Field required")
            schema = js.get("schema")
            if schema is not None and not isinstance(schema, dict):
                raise bad(f"{where}.json_schema.schema", "Expected an object.")
            return schema or {}
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise bad(f"{where}.schema", "Field required" if schema is None else "Expected an object.")
        return schema
    raise bad(f"{where}.type", "Expected 'text', 'json_object' or 'json_schema'.")


_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "max", "max": "max"}


def thinking_for_effort(effort: Any, where: str) -> Thinking:
    """OpenAI reasoning effort → Kiro's adaptive thinking at that effort ("none" turns it off)."""
    if effort is None or effort == "none":
        return Thinking()
    if not isinstance(effort, str) or effort not in _EFFORTS:
        raise bad(where, "Expected one of 'none', 'minimal', 'low', 'medium', 'high', 'xhigh'.")
    return Thinking("adaptive", 0, _EFFORTS[effort])


def error_status(err: GatewayError) -> int:
    return _STATUS_OVERRIDE.get(err.status, err.status)


def error_payload(err: GatewayError) -> dict:
    if isinstance(err, ContextOverflow):  # OpenAI's own wording and code: clients compact on it
        return {"message": f"This model's maximum context length is {err.limit} tokens. However, your messages "
                           f"resulted in {err.tokens} tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}
    etype, code = _ERRORS.get(err.kind, ("server_error", None))
    reason = getattr(err, "reason", None)  # set on Kiro's own error answers (kiro/client.py)
    if reason == "CONTENT_LENGTH_EXCEEDS_THRESHOLD" or err.message.startswith(("Input is too long",
                                                                              "Context window is full")):
        code = "context_length_exceeded"  # Codex compacts or stops instead of retrying
    elif reason == "MONTHLY_REQUEST_COUNT":
        code = "insufficient_quota"
    code = getattr(err, "openai_code", None) or code
    m = _PARAM.match(err.message) if err.kind == "invalid_request" else None
    return {"message": err.message, "type": etype, "param": m.group(1) if m else None, "code": code}


def error_body(err: GatewayError) -> bytes:
    return orjson.dumps({"error": error_payload(err)})


def url_citation(start: int, end: int, source: SearchHit, nested: bool) -> dict:
    """A `url_citation` annotation of characters start..end of the text. Chat nests its details
    under `url_citation`, `nested`; Responses has them at the top."""
    details = {"start_index": start, "end_index": end, "url": source.url, "title": source.title}
    return {"type": "url_citation", "url_citation": details} if nested else {"type": "url_citation", **details}


def new_id(prefix: str) -> str:
    return prefix + random_hex(32)
