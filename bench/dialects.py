"""What the load generator sends, and how it checks what came back: one `Target` per mode/dialect.

A target is a request builder plus a response checker:

- `body(anthropic_body, stream)` turns the benchmark's Anthropic body (the common source, see
  bodies.py) into this target's request bytes, once per cell;
- `expected(...)` says what text must arrive, computed from the Kiro request that reaches the fake
  and the fake's own deterministic default reply ("Hello from fake Kiro. You said: …" padded to
  `reply_chars` characters and split into `chunks` events);
- `check(status, body, stream, expected)` returns None when the whole reply arrived intact, else a
  short description of what is wrong.

`direct` is the floor: the equivalent Kiro request straight to the fake, the reply decoded with the
gateway's own EventStreamDecoder. Adding a dialect = one subclass of `Target` + an entry in
`TARGETS`; it is benchmarked only if its package exists in kiro_gateway/dialects/ and the running
gateway answers its route (see `available`).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import orjson

from kiro_gateway.kiro.eventstream import EventStreamDecoder
from kiro_gateway.kiro.models import ModelMapper
from kiro_gateway.kiro.request import RequestOptions, build_request

__all__ = ["Expected", "Target", "TARGETS", "target", "expected_reply"]


@dataclass(frozen=True, slots=True)
class Expected:
    full: str  # every assistantResponseEvent content the fake sends, concatenated
    thinking: str  # the part a gateway delivers as reasoning ("" when thinking is off)
    text: str  # the answer text a client must receive, exactly


def expected_reply(kiro_body: dict, reply_chars: int, chunks: int) -> Expected:
    """The fake's default reply for this Kiro body (mirrors fake/replies.py default_reply)."""
    from kiro_gateway.fake.replies import FILLER, THINKING_PREFIX, default_text

    text, tools = default_text(kiro_body)
    if tools:
        raise ValueError("benchmark bodies must not trigger fake tool directives")
    target = max(reply_chars, chunks)
    if len(text) < target:
        text += (FILLER * (1 + (target - len(text)) // len(FILLER)))[: target - len(text)]
    if text.startswith(THINKING_PREFIX):
        inner = THINKING_PREFIX[len("<thinking>\n"):].split("\n</thinking>")[0]
        return Expected(text, inner, text[len(THINKING_PREFIX):])
    return Expected(text, "", text)


_MAPPER = ModelMapper()


def kiro_request_for(conv) -> bytes:
    """The Kiro body the gateway builds for a conversation (no profile ARN, default size limit)."""
    return build_request(conv, _MAPPER, RequestOptions()).body


def _sse_events(body: bytes):
    """(event name or None, parsed data) for every SSE event of a complete body."""
    for block in body.split(b"\n\n"):
        if not block.strip():
            continue
        name = None
        data = None
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:].strip()
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode()
        if data is None:
            continue  # comment / keep-alive
        if data == b"[DONE]":
            yield name, "[DONE]"
            continue
        yield name, orjson.loads(data)


def _mismatch(what: str, got: str, want: str) -> str:
    i = next((k for k, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
    return f"{what} differs at char {i} (got {len(got)} chars, want {len(want)}): {got[i:i + 40]!r} vs {want[i:i + 40]!r}"


class Target:
    name = ""  # row label in the table: "direct" or the dialect's name
    mode = "gateway"  # "direct" (straight to the fake) or "gateway"
    package: str | None = None  # kiro_gateway.dialects.<package> must exist for gateway dialects
    streams: tuple[bool, ...] = (True, False)

    def path(self, stream: bool, anthropic_body: dict) -> str:
        raise NotImplementedError

    def headers(self, api_key: str) -> dict[str, str]:
        return {"content-type": "application/json", "authorization": f"Bearer {api_key}"}

    def body(self, anthropic_body: dict, stream: bool) -> bytes:
        raise NotImplementedError

    def expected(self, anthropic_body: dict, stream: bool, reply_chars: int, chunks: int) -> Expected:
        raise NotImplementedError

    def check(self, status: int, body: bytes, stream: bool, exp: Expected) -> str | None:
        raise NotImplementedError

    def available(self) -> bool:
        if self.package is None:
            return True
        return importlib.util.find_spec(f"kiro_gateway.dialects.{self.package}") is not None


# ---------------------------------------------------------------------------------------------
# The floor: Kiro's own protocol, straight to the fake


class Direct(Target):
    name = "direct"
    mode = "direct"
    streams = (True,)  # Kiro only streams

    def path(self, stream, anthropic_body):
        return "/generateAssistantResponse"

    def headers(self, api_key):
        return {"content-type": "application/json", "authorization": "Bearer bench-direct"}

    def body(self, anthropic_body, stream):
        from kiro_gateway.dialects.anthropic.parse import parse_request

        return kiro_request_for(parse_request(anthropic_body))

    def expected(self, anthropic_body, stream, reply_chars, chunks):
        return expected_reply(orjson.loads(self.body(anthropic_body, stream)), reply_chars, chunks)

    def check(self, status, body, stream, exp):
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        dec = EventStreamDecoder()
        texts = []
        kinds = set()
        for msg in dec.feed(body):
            et = msg.event_type
            kinds.add(et)
            if msg.message_type != "event":
                return f"{msg.message_type} frame: {msg.payload[:200]!r}"
            if et == "assistantResponseEvent":
                texts.append(orjson.loads(msg.payload)["content"])
        if dec.buffered or dec.errors_seen:
            return f"event stream damaged ({dec.buffered} bytes left, {dec.errors_seen} errors)"
        if "meteringEvent" not in kinds or "contextUsageEvent" not in kinds:
            return f"trailer missing: got {sorted(k or '' for k in kinds)}"
        got = "".join(texts)
        return None if got == exp.full else _mismatch("text", got, exp.full)


# ---------------------------------------------------------------------------------------------
# Gateway dialects


class _GatewayDialect(Target):
    """Expected reply: the dialect's own parser → build_request → the fake's default reply."""

    def conversation(self, anthropic_body: dict, stream: bool):
        """The neutral conversation the gateway will see (via the dialect's own parser)."""
        mod = importlib.import_module(f"kiro_gateway.dialects.{self.package}")
        dialect = next(getattr(mod, n)() for n in dir(mod) if n.endswith("Dialect") and n != "Dialect"
                       and isinstance(getattr(mod, n), type))
        return dialect.parse(orjson.loads(self.body(anthropic_body, stream)),
                             _FakeRequest(self.path_params(anthropic_body, stream)))

    def path_params(self, anthropic_body: dict, stream: bool) -> dict[str, str]:
        return {}

    def expected(self, anthropic_body, stream, reply_chars, chunks):
        kiro = orjson.loads(kiro_request_for(self.conversation(anthropic_body, stream)))
        return expected_reply(kiro, reply_chars, chunks)


class _FakeRequest:
    """Enough of a Starlette Request for a dialect's parse(): headers, query and path params, and
    the scope (where the Responses dialect finds who is asking)."""

    def __init__(self, path_params: dict[str, str]) -> None:
        self.scope: dict[str, object] = {}
        self.headers: dict[str, str] = {}
        self.query_params: dict[str, str] = {}
        self.path_params = path_params


class Anthropic(_GatewayDialect):
    name = "anthropic"
    package = "anthropic"

    def path(self, stream, anthropic_body):
        return "/v1/messages"

    def headers(self, api_key):
        return {"content-type": "application/json", "x-api-key": api_key, "anthropic-version": "2023-06-01"}

    def body(self, anthropic_body, stream):
        return orjson.dumps({**anthropic_body, "stream": stream})

    def conversation(self, anthropic_body, stream):
        from kiro_gateway.dialects.anthropic.parse import parse_request

        return parse_request({**anthropic_body, "stream": stream})

    def check(self, status, body, stream, exp):
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        if not stream:
            msg = orjson.loads(body)
            text = "".join(b["text"] for b in msg["content"] if b["type"] == "text")
            thinking = "".join(b["thinking"] for b in msg["content"] if b["type"] == "thinking")
            if msg.get("stop_reason") != "end_turn":
                return f"stop_reason {msg.get('stop_reason')!r}"
        else:
            texts, thoughts, kinds = [], [], []
            for _, ev in _sse_events(body):
                t = ev["type"]
                kinds.append(t)
                if t == "content_block_delta":
                    d = ev["delta"]
                    if d["type"] == "text_delta":
                        texts.append(d["text"])
                    elif d["type"] == "thinking_delta":
                        thoughts.append(d["thinking"])
                elif t == "error":
                    return f"stream error event: {ev['error']}"
            if not kinds or kinds[0] != "message_start" or kinds[-1] != "message_stop":
                return f"stream shape: starts {kinds[:1]}, ends {kinds[-1:]}"
            text, thinking = "".join(texts), "".join(thoughts)
        if thinking != exp.thinking:
            return _mismatch("thinking", thinking, exp.thinking)
        return None if text == exp.text else _mismatch("text", text, exp.text)


# -- Anthropic body → other dialects (for when their packages exist) ----------------------------


def _text_of(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]


def _system_text(body: dict) -> str:
    return "\n".join(_text_of(body.get("system") or []))


def _turns(body: dict):
    """(role, texts, tool_calls [(id, name, input)], tool_results [(id, text)]) per message;
    Anthropic's role "system" messages become user text, as the Anthropic dialect does."""
    for m in body["messages"]:
        role = "user" if m["role"] == "system" else m["role"]
        content = m["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts, calls, results = [], [], []
        for b in blocks:
            t = b.get("type")
            if t == "text":
                texts.append(b["text"])
            elif t == "tool_use":
                calls.append((b["id"], b["name"], b.get("input") or {}))
            elif t == "tool_result":
                c = b.get("content")
                results.append((b["tool_use_id"], "\n".join(_text_of(c)) if c is not None else ""))
        yield role, texts, calls, results


class OpenAIChat(_GatewayDialect):
    name = "openai_chat"
    package = "openai_chat"

    def path(self, stream, anthropic_body):
        return "/v1/chat/completions"

    def body(self, anthropic_body, stream):
        msgs: list[dict] = [{"role": "system", "content": _system_text(anthropic_body)}]
        for role, texts, calls, results in _turns(anthropic_body):
            for tid, text in results:
                msgs.append({"role": "tool", "tool_call_id": tid, "content": text})
            if role == "assistant":
                m: dict = {"role": "assistant", "content": "\n\n".join(texts) or None}
                if calls:
                    m["tool_calls"] = [{"id": i, "type": "function", "function": {
                        "name": n, "arguments": orjson.dumps(a).decode()}} for i, n, a in calls]
                msgs.append(m)
            elif texts:
                msgs.append({"role": "user", "content": [{"type": "text", "text": t} for t in texts]})
        out: dict = {"model": anthropic_body["model"], "messages": msgs, "stream": stream,
                     "max_tokens": anthropic_body.get("max_tokens", 4096)}
        if stream:
            out["stream_options"] = {"include_usage": True}
        if anthropic_body.get("tools"):
            out["tools"] = [{"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                                              "parameters": t["input_schema"]}}
                            for t in anthropic_body["tools"]]
        return orjson.dumps(out)

    def check(self, status, body, stream, exp):
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        if stream:
            texts, done = [], False
            for _, ev in _sse_events(body):
                if ev == "[DONE]":
                    done = True
                    continue
                if "error" in ev:
                    return f"stream error: {ev['error']}"
                for ch in ev.get("choices") or ():
                    c = (ch.get("delta") or {}).get("content")
                    if c:
                        texts.append(c)
            if not done:
                return "stream did not end with [DONE]"
            text = "".join(texts)
        else:
            text = orjson.loads(body)["choices"][0]["message"].get("content") or ""
        return None if text == exp.text else _mismatch("text", text, exp.text)


class OpenAIResponses(_GatewayDialect):
    name = "openai_responses"
    package = "openai_responses"

    def path(self, stream, anthropic_body):
        return "/v1/responses"

    def body(self, anthropic_body, stream):
        items: list[dict] = []
        for role, texts, calls, results in _turns(anthropic_body):
            for tid, text in results:
                items.append({"type": "function_call_output", "call_id": tid, "output": text})
            if texts:
                kind = "output_text" if role == "assistant" else "input_text"
                items.append({"type": "message", "role": role, "content": [{"type": kind, "text": t} for t in texts]})
            for i, n, a in calls:
                items.append({"type": "function_call", "call_id": i, "name": n, "arguments": orjson.dumps(a).decode()})
        out: dict = {"model": anthropic_body["model"], "instructions": _system_text(anthropic_body), "input": items,
                     "stream": stream, "max_output_tokens": anthropic_body.get("max_tokens", 4096)}
        if anthropic_body.get("tools"):
            out["tools"] = [{"type": "function", "name": t["name"], "description": t.get("description", ""),
                             "parameters": t["input_schema"]} for t in anthropic_body["tools"]]
        return orjson.dumps(out)

    def check(self, status, body, stream, exp):
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        if stream:
            texts, completed = [], False
            for _, ev in _sse_events(body):
                if ev == "[DONE]":
                    continue
                t = ev.get("type")
                if t == "response.output_text.delta":
                    texts.append(ev["delta"])
                elif t == "response.completed":
                    completed = True
                elif t in ("error", "response.failed"):
                    return f"stream error: {ev}"
            if not completed:
                return "stream did not end with response.completed"
            text = "".join(texts)
        else:
            resp = orjson.loads(body)
            text = "".join(c.get("text", "") for it in resp.get("output", ()) if it.get("type") == "message"
                           for c in it.get("content", ()) if c.get("type") == "output_text")
        return None if text == exp.text else _mismatch("text", text, exp.text)


class Gemini(_GatewayDialect):
    name = "gemini"
    package = "gemini"

    def path(self, stream, anthropic_body):
        model = anthropic_body["model"]
        return f"/v1beta/models/{model}:streamGenerateContent?alt=sse" if stream \
            else f"/v1beta/models/{model}:generateContent"

    def headers(self, api_key):
        return {"content-type": "application/json", "x-goog-api-key": api_key}

    def path_params(self, anthropic_body, stream):
        method = "streamGenerateContent" if stream else "generateContent"
        return {"rest": f"{anthropic_body['model']}:{method}"}

    def body(self, anthropic_body, stream):
        contents: list[dict] = []
        names = {}
        for role, texts, calls, results in _turns(anthropic_body):
            parts: list[dict] = [{"functionResponse": {"name": names.get(tid, "tool"), "id": tid,
                                                       "response": {"output": text}}} for tid, text in results]
            parts += [{"text": t} for t in texts]
            for i, n, a in calls:
                names[i] = n
                parts.append({"functionCall": {"name": n, "id": i, "args": a}})
            if parts:
                contents.append({"role": "model" if role == "assistant" else "user", "parts": parts})
        out: dict = {"contents": contents, "systemInstruction": {"parts": [{"text": _system_text(anthropic_body)}]},
                     "generationConfig": {"maxOutputTokens": anthropic_body.get("max_tokens", 4096)}}
        if anthropic_body.get("tools"):
            out["tools"] = [{"functionDeclarations": [{"name": t["name"], "description": t.get("description", ""),
                                                       "parametersJsonSchema": t["input_schema"]}
                                                      for t in anthropic_body["tools"]]}]
        return orjson.dumps(out)

    def check(self, status, body, stream, exp):
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        chunks = [ev for _, ev in _sse_events(body)] if stream else [orjson.loads(body)]
        texts = []
        for ev in chunks:
            if "error" in ev:
                return f"error: {ev['error']}"
            for cand in ev.get("candidates") or ():
                for p in (cand.get("content") or {}).get("parts") or ():
                    if "text" in p and not p.get("thought"):
                        texts.append(p["text"])
        text = "".join(texts)
        return None if text == exp.text else _mismatch("text", text, exp.text)


TARGETS: dict[str, Target] = {t.name: t for t in (Direct(), Anthropic(), OpenAIChat(), OpenAIResponses(), Gemini())}


def target(name: str) -> Target:
    return TARGETS[name]
