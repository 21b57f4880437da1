"""Replies of the fake Kiro as lists of encoded event-stream frames.

A reply is either an HTTP error (status + body) or a plan: a list whose items are frame bytes
(written as they come, coalesced until the next pause), floats (sleep that many seconds), `DROP`
(abort the connection). With no matching script the deterministic `default_reply` is used.

A script (JSON-serialisable; the first pending one that matches serves the request):

    {"match": str?,            substring of any request text (current content, tool results, history)
     "token": str?,            only for this bearer token
     "account": str?,          only for this registered account (by id; survives token refreshes)
     "error": str?,            a named answer from fake/catalog.py ERRORS (e.g. USER_REQUEST_RATE_EXCEEDED)
     "times": 1,               requests served (-1 = forever)
     "status": int?, "body": dict|str?, "headers": dict?,   status >= 300: an HTTP error reply
     "first_byte_delay": s?, "chunk_delay": s?,             default: the server settings
     "trailer": true,          append metering + contextUsage unless a step gave its own
     "steps": [...]?}          absent: the default reply (with this script's delays)

Steps, one kind each: {"text": str, "chunks": n?} (default ~20 chars per event), {"thinking": str,
"chunks": n?} (in-band "<thinking>\n…\n</thinking>\n\n"), {"tool": {"name", "input": dict|str, "id"?,
"fragments": 3}}, {"exception": {"type", "message"}}, {"error_frame": {"code", "message"}},
{"context_usage": pct}, {"metering": credits}, {"event": {"type", "payload": dict|str}}, {"delay": s},
{"metadata": {"tokenUsage": {...}, "stopReason": str?}} (metadataEvent), {"reasoning": str,
"signature": str?, "chunks": n?} (reasoningContentEvent frames, the signature on the last),
{"drop": true} (abort the connection: a reset mid-stream), {"garbage": n} (n random bytes),
{"bad_crc": "text" | {"text", "where": "message"|"prelude"}} (a text frame whose CRC is wrong),
{"cut": n} (the first n bytes of a text frame, then a clean end of the body: no further steps).
An exception, error_frame, drop or cut step suppresses the trailer.

Hot-path notes: the default text's frames are cached by (text, chunks) because benchmarks repeat
one prompt; the metering frame is pre-encoded; context-usage frames are cached by percentage.
"""

from __future__ import annotations

import json
import random
import secrets
from functools import lru_cache
from typing import TypeVar

import orjson

from ..kiro.eventstream import encode_event, encode_exception, encode_frame

__all__ = [
    "DROP",
    "Reply",
    "Settings",
    "check_script",
    "script_matches",
    "script_reply",
    "default_reply",
    "error_reply",
    "split_text",
    "new_tool_use_id",
    "parse_directives",
    "THINKING_PREFIX",
    "json_request",
    "minimal_instance",
]

DROP = object()
THINKING_PREFIX = "<thinking>\nLet me think about this.\n</thinking>\n\n"
THINKING_MARKERS = ("<thinking_mode>enabled</thinking_mode>", "<thinking_mode>adaptive</thinking_mode>")
DIRECTIVE = "[[fake:tool "
CHUNK_CHARS = 20
DEFAULT_FRAGMENTS = 3
DEFAULT_METERING = 0.01
FILLER = " The quick brown fox jumps over the lazy dog."
_decoder = json.JSONDecoder()

JSON = "application/json"
ERROR_BODIES = {
    400: {"message": "Improperly formed request.", "reason": None},
    401: {
        "message": "The bearer token included in the request is invalid.",
        "__type": "com.amazon.aws.codewhisperer#AccessDeniedException",
    },
    402: {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"},
    408: {"message": "Request timed out.", "reason": None},
    429: {
        "message": "Too many requests, please wait before trying again.",
        "__type": "com.amazon.aws.codewhisperer#ThrottlingException",
        "reason": None,
    },
    500: {
        "message": "Encountered an unexpected error when processing the request, please try again.",
        "__type": "com.amazon.aws.codewhisperer#InternalServerException",
    },
    503: {
        "message": "The model is temporarily unavailable due to unexpectedly high load.",
        "reason": "MODEL_TEMPORARILY_UNAVAILABLE",
    },
}
ERROR_BODIES[403] = ERROR_BODIES[401]


class Settings:
    """Server-level knobs; the default reply and the recorder read them on every request."""

    __slots__ = ("default_chunks", "chunk_delay", "first_byte_delay", "reply_chars", "record", "record_bodies",
                 "refresh_delay")

    def __init__(self, **kw) -> None:
        self.default_chunks: int | None = None  # None: ~20 chars per assistantResponseEvent
        self.chunk_delay = 0.0
        self.first_byte_delay = 0.0
        self.reply_chars = 0  # pad the default text to at least this many characters
        self.record = True
        self.record_bodies = True
        self.refresh_delay = 0.0  # seconds both refresh endpoints wait before answering (a hang)
        self.update(**kw)

    def update(self, **kw) -> dict:
        for key, value in kw.items():
            if key not in self.__slots__:
                raise ValueError(f"unknown setting {key!r}")
            if key == "default_chunks" and value is not None:
                value = int(value)
                if value < 1:
                    raise ValueError("default_chunks must be >= 1")
            elif key in ("chunk_delay", "first_byte_delay", "refresh_delay"):
                value = float(value)
                if value < 0:
                    raise ValueError(f"{key} must be >= 0")
            elif key == "reply_chars":
                value = max(0, int(value))
            elif key in ("record", "record_bodies"):
                value = bool(value)
            setattr(self, key, value)
        return self.as_dict()

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


class Reply:
    __slots__ = ("status", "body", "content_type", "headers", "first_byte_delay", "items")

    def __init__(self, status=200, body=b"", content_type=JSON, headers=None, first_byte_delay=0.0, items=()):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.first_byte_delay = first_byte_delay
        self.items = items


def error_reply(status: int, body=None, headers=None, first_byte_delay: float = 0.0) -> Reply:
    if body is None:
        body = ERROR_BODIES.get(status, {"message": f"Fake Kiro error {status}.", "reason": None})
    if isinstance(body, str):
        return Reply(status, body.encode(), "text/plain; charset=utf-8", headers, first_byte_delay)
    return Reply(status, orjson.dumps(body), JSON, headers, first_byte_delay)


# ---------------------------------------------------------------------------------------------
# Frames


def new_tool_use_id() -> str:
    return "tooluse_" + secrets.token_urlsafe(16)  # 16 bytes → 22 url-safe chars


def split_text(text: str, n: int) -> list[str]:
    """`text` in exactly `n` contiguous pieces (sizes differ by at most one)."""
    size, extra = divmod(len(text), n)
    out, pos = [], 0
    for i in range(n):
        end = pos + size + (1 if i < extra else 0)
        out.append(text[pos:end])
        pos = end
    return out


def _chunk_count(text: str, chunks) -> int:
    if chunks is None:
        return max(1, -(-len(text) // CHUNK_CHARS))
    return max(1, min(int(chunks), len(text)))


@lru_cache(maxsize=512)
def _text_frames(text: str, n: int) -> tuple[bytes, ...]:
    return tuple(
        encode_event("assistantResponseEvent", orjson.dumps({"content": part}))
        for part in split_text(text, n)
    )


def _tool_frames(name: str, tool_input, tool_id: str | None, fragments) -> list[bytes]:
    tool_id = tool_id or new_tool_use_id()
    raw = tool_input if isinstance(tool_input, str) else orjson.dumps(tool_input).decode()
    frames = []
    if raw:
        n = max(1, min(int(fragments or DEFAULT_FRAGMENTS), len(raw)))
        for part in split_text(raw, n):
            payload = {"name": name, "toolUseId": tool_id, "input": part}
            frames.append(encode_event("toolUseEvent", orjson.dumps(payload)))
    stop = {"name": name, "toolUseId": tool_id, "stop": True}
    frames.append(encode_event("toolUseEvent", orjson.dumps(stop)))
    return frames


def _metering_frame(usage: float) -> bytes:
    payload = {"unit": "credit", "unitPlural": "credits", "usage": usage}
    return encode_event("meteringEvent", orjson.dumps(payload))


_DEFAULT_METERING_FRAME = _metering_frame(DEFAULT_METERING)


@lru_cache(maxsize=4096)
def _context_frame(pct: float) -> bytes:
    return encode_event("contextUsageEvent", orjson.dumps({"contextUsagePercentage": pct}))


def context_percentage(raw_size: int) -> float:
    return round(raw_size / 4 / 200000 * 100, 4)


def _with_delays(frames: list, delay: float) -> list:
    if not delay or len(frames) < 2:
        return frames
    out = [frames[0]]
    for frame in frames[1:]:
        out.append(delay)
        out.append(frame)
    return out


# ---------------------------------------------------------------------------------------------
# Scripts

SCRIPT_KEYS = frozenset(
    {"match", "token", "account", "error", "times", "status", "body", "headers", "first_byte_delay",
     "chunk_delay", "steps", "trailer"}
)
STEP_KINDS = frozenset(
    {"text", "thinking", "tool", "exception", "error_frame", "context_usage", "metering",
     "event", "delay", "drop", "garbage", "metadata", "reasoning", "bad_crc", "cut"}
)
TERMINAL_STEPS = frozenset({"exception", "error_frame", "drop", "cut"})


def check_script(script: dict) -> dict:
    """A validated copy of `script` with `times` filled in; ValueError names what is wrong."""
    if not isinstance(script, dict):
        raise ValueError("a script is a JSON object")
    unknown = set(script) - SCRIPT_KEYS
    if unknown:
        raise ValueError(f"unknown script keys: {sorted(unknown)}")
    out = dict(script)
    times = out.setdefault("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times == 0 or times < -1:
        raise ValueError("times must be a positive integer or -1")
    if "status" in out and not (isinstance(out["status"], int) and 200 <= out["status"] <= 599):
        raise ValueError("status must be an HTTP status code")
    for key in ("match", "token", "account", "error"):
        if out.get(key) is not None and not isinstance(out[key], str):
            raise ValueError(f"{key} must be a string")
    if out.get("error") is not None:
        from .catalog import named_error

        named_error(out["error"])
    steps = out.get("steps")
    if steps is not None:
        if not isinstance(steps, list):
            raise ValueError("steps must be a list")
        for step in steps:
            kinds = set(step) & STEP_KINDS if isinstance(step, dict) else set()
            extra = set(step) - STEP_KINDS - {"chunks", "signature"} if isinstance(step, dict) else set()
            if len(kinds) != 1 or extra:
                raise ValueError(f"a step has exactly one of {sorted(STEP_KINDS)}: {step!r}")
            tool = step.get("tool")
            if tool is not None and not (isinstance(tool, dict) and isinstance(tool.get("name"), str)):
                raise ValueError("a tool step needs {'name': str, 'input': object}")
    return out


def script_matches(script: dict, body: dict, token: str | None, account: str | None = None) -> bool:
    want = script.get("token")
    if want is not None and want != token:
        return False
    if script.get("account") is not None and script["account"] != account:
        return False
    needle = script.get("match")
    return needle is None or any(needle in text for text in request_texts(body))


def request_texts(body: dict):
    """Current content first, then tool-result texts and history contents."""
    state = body["conversationState"]
    msg = state["currentMessage"]["userInputMessage"]
    yield msg["content"]
    yield from _result_texts(msg)
    for entry in state.get("history") or ():
        inner = entry.get("userInputMessage") or entry.get("assistantResponseMessage")
        yield inner["content"]
        yield from _result_texts(inner)


def _result_texts(msg: dict):
    ctx = msg.get("userInputMessageContext") or {}
    for result in ctx.get("toolResults") or ():
        for item in result["content"]:
            yield item["text"]


def script_reply(script: dict, body: dict, raw_size: int, settings: Settings) -> Reply:
    first_byte_delay = script.get("first_byte_delay", settings.first_byte_delay)
    if script.get("error"):
        from .catalog import named_error

        status, err_body = named_error(script["error"])
        return error_reply(status, err_body, script.get("headers"), first_byte_delay)
    status = script.get("status", 200)
    if status >= 300:
        return error_reply(status, script.get("body"), script.get("headers"), first_byte_delay)
    steps = script.get("steps")
    if steps is None:
        reply = default_reply(body, raw_size, settings)
        reply.first_byte_delay = first_byte_delay
        return reply
    delay = script.get("chunk_delay", settings.chunk_delay)
    items: list = []
    kinds = set()

    def frames(new: list) -> None:
        for frame in new:
            if delay and items:
                items.append(delay)
            items.append(frame)

    for step in steps:
        (kind,) = set(step) & STEP_KINDS
        kinds.add(kind)
        value = step[kind]
        if kind == "text" or kind == "thinking":
            # The model writes its reasoning the way Kiro streams it: tag, newline, text, newline.
            text = value if kind == "text" else f"<thinking>\n{value}\n</thinking>\n\n"
            if text:
                frames(list(_text_frames(text, _chunk_count(text, step.get("chunks")))))
        elif kind == "tool":
            frames(_tool_frames(value["name"], value.get("input", {}), value.get("id"), value.get("fragments")))
        elif kind == "exception":
            payload = orjson.dumps({"message": value.get("message", "")})
            frames([encode_exception(value.get("type", "InternalServerException"), payload)])
        elif kind == "error_frame":
            code, message = value.get("code", "InternalError"), value.get("message", "")
            headers = [(":error-code", code), (":error-message", message), (":message-type", "error")]
            frames([encode_frame(headers, orjson.dumps({"__type": code, "message": message}))])
        elif kind == "context_usage":
            frames([_context_frame(float(value))])
        elif kind == "metering":
            frames([_metering_frame(float(value))])
        elif kind == "event":
            payload = value.get("payload", {})  # a string is sent as it is: JSON no encoder would write
            frames([encode_event(value["type"], payload.encode() if isinstance(payload, str) else orjson.dumps(payload))])
        elif kind == "metadata":
            frames([encode_event("metadataEvent", orjson.dumps(value))])
        elif kind == "reasoning":
            parts = split_text(value, _chunk_count(value, step.get("chunks"))) if value else [""]
            out = []
            for i, part in enumerate(parts):
                reasoning = {"text": part}
                if i == len(parts) - 1 and step.get("signature"):
                    reasoning["signature"] = step["signature"]
                out.append(encode_event("reasoningContentEvent", orjson.dumps(reasoning)))
            frames(out)
        elif kind == "delay":
            items.append(float(value))
        elif kind == "garbage":
            items.append(random.Random(int(value)).randbytes(int(value)))
        elif kind == "drop" and value:
            items.append(DROP)
        elif kind == "bad_crc":
            spec = value if isinstance(value, dict) else {"text": str(value)}
            corrupt = bytearray(_text_frames(spec.get("text", "x"), 1)[0])
            at = 8 if spec.get("where") == "prelude" else len(corrupt) - 1  # the prelude's CRC, or the message's
            corrupt[at] ^= 0xFF
            frames([bytes(corrupt)])
        elif kind == "cut":
            frame = _text_frames("this frame is cut off", 1)[0]
            frames([frame[:max(1, min(int(value), len(frame) - 1))]])
            break
    if script.get("trailer", True) and not kinds & TERMINAL_STEPS:
        trailer = []
        if "metering" not in kinds:
            trailer.append(_DEFAULT_METERING_FRAME)
        if "context_usage" not in kinds:
            trailer.append(_context_frame(context_percentage(raw_size)))
        items.extend(trailer)
    return Reply(headers=script.get("headers"), first_byte_delay=first_byte_delay, items=items)


# ---------------------------------------------------------------------------------------------
# The default reply


def parse_directives(content: str) -> list[tuple[str, dict]]:
    """Every `[[fake:tool NAME {json}]]` in `content`; the JSON may contain `]]` in strings."""
    out = []
    pos = content.find(DIRECTIVE)
    while pos >= 0:
        start = pos + len(DIRECTIVE)
        end = start
        while end < len(content) and not content[end].isspace() and content[end] not in "{]":
            end += 1
        name = content[start:end]
        while end < len(content) and content[end].isspace():
            end += 1
        tool_input: object = {}
        if content.startswith("{", end):
            try:
                tool_input, end = _decoder.raw_decode(content, end)
            except ValueError:
                tool_input = None
            while end < len(content) and content[end].isspace():
                end += 1
        if name and isinstance(tool_input, dict) and content.startswith("]]", end):
            out.append((name, tool_input))
            end += 2
        pos = content.find(DIRECTIVE, max(end, start))
    return out


def wants_thinking(body: dict) -> bool:
    state = body["conversationState"]
    texts = [state["currentMessage"]["userInputMessage"]["content"]]
    texts += [e["userInputMessage"]["content"] for e in state.get("history") or () if "userInputMessage" in e]
    return any(marker in text for text in texts for marker in THINKING_MARKERS)


def _echo(content: str) -> str:
    collapsed = " ".join(content[-4000:].split())
    if len(collapsed) < 200 and len(content) > 4000:
        collapsed = " ".join(content.split())
    return "Hello from fake Kiro. You said: " + collapsed[-200:]


# The gateway's JSON-mode instruction (kiro/request.py): a real model answers with JSON, so the
# fake answers with a minimal instance of the embedded schema (clients like Gemini CLI retry
# otherwise). tests/fake/test_fake_json_mode.py keeps these markers in step with the gateway.
JSON_MARKER = "Respond with a single valid JSON value and nothing else"
SCHEMA_MARKER = "It must conform to this JSON Schema:\n"


def json_request(body: dict) -> tuple[bool, object]:
    """(whether the request asks for JSON, the schema it embeds or None)."""
    state = body["conversationState"]
    texts = [state["currentMessage"]["userInputMessage"]["content"]]
    texts += [e["userInputMessage"]["content"] for e in state.get("history") or () if "userInputMessage" in e]
    for text in texts:
        at = text.find(JSON_MARKER)
        if at < 0:
            continue
        at = text.find(SCHEMA_MARKER, at)
        if at < 0:
            return True, None
        try:
            return True, _decoder.raw_decode(text, at + len(SCHEMA_MARKER))[0]
        except ValueError:
            return True, None
    return False, None


_T = TypeVar("_T")
_D = TypeVar("_D")


def _typed(schema: dict, key: str, kind: type[_T], default: _D) -> _T | _D:
    """schema[key] when it is a `kind`, else `default`."""
    value = schema.get(key)
    return value if isinstance(value, kind) else default


def minimal_instance(schema: object, depth: int = 0) -> object:
    """A small value valid for common JSON Schemas: required properties only, numbers at their
    minimum (else 1, since "scores" are rarely 0-based), strings "fake", first enum/anyOf."""
    if not isinstance(schema, dict) or depth > 32:
        return {}
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return minimal_instance(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = kind.lower() if isinstance(kind, str) else ("object" if "properties" in schema else None)
    if kind == "object":
        props = _typed(schema, "properties", dict, {})
        required = _typed(schema, "required", list, [])
        return {k: minimal_instance(props.get(k), depth + 1) for k in required if isinstance(k, str)}
    if kind == "array":
        n = _typed(schema, "minItems", int, 0)
        return [minimal_instance(schema.get("items"), depth + 1) for _ in range(min(n, 100))]
    if kind == "string":
        n = _typed(schema, "minLength", int, 0)
        m = _typed(schema, "maxLength", int, None)
        return ("fake" + "x" * max(0, min(n, 10000) - 4))[:m]
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        value = low if isinstance(low, (int, float)) else 1
        if isinstance(schema.get("exclusiveMinimum"), (int, float)):
            value = schema["exclusiveMinimum"] + 1
        if isinstance(high, (int, float)) and value > high:
            value = high
        return int(-(-value // 1)) if kind == "integer" else value
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return {}


def default_text(body: dict) -> tuple[str, list[tuple[str, dict]]]:
    """(text, tool calls) of the default reply, before chunking."""
    msg = body["conversationState"]["currentMessage"]["userInputMessage"]
    content = msg["content"]
    results = (msg.get("userInputMessageContext") or {}).get("toolResults") or ()
    tools: list[tuple[str, dict]] = []
    wants_json, schema = json_request(body)
    if wants_json:
        text = orjson.dumps(minimal_instance(schema) if schema is not None else {"answer": "fake"}).decode()
    elif results:
        first = "".join(item["text"] for item in results[0]["content"])
        text = f"Received {len(results)} tool result(s): {first[:200]}"
    else:
        tools = parse_directives(content) if DIRECTIVE in content else []
        if tools:
            names = ", ".join(name for name, _ in tools)
            text = f"I'll use the {names} tool{'s' if len(tools) > 1 else ''}."
        else:
            text = _echo(content)
    if wants_thinking(body):
        text = THINKING_PREFIX + text
    return text, tools


def default_reply(body: dict, raw_size: int, settings: Settings) -> Reply:
    text, tools = default_text(body)
    target = max(settings.reply_chars, settings.default_chunks or 0)
    if len(text) < target:  # pad so that every one of the N chunks is non-empty
        text += (FILLER * (1 + (target - len(text)) // len(FILLER)))[: target - len(text)]
    frames = list(_text_frames(text, settings.default_chunks or _chunk_count(text, None)))
    for name, tool_input in tools:
        frames.extend(_tool_frames(name, tool_input, None, DEFAULT_FRAGMENTS))
    items = _with_delays(frames, settings.chunk_delay)
    items.append(_DEFAULT_METERING_FRAME)
    items.append(_context_frame(context_percentage(raw_size)))
    return Reply(first_byte_delay=settings.first_byte_delay, items=items)
