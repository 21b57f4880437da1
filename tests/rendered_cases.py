"""What a client receives for a scripted Kiro reply, in every dialect: the harness of
tests/test_rendered_sequences.py (and of `python tests/rendered_cases.py`, which rewrites the goldens).

A case is a client request (one per dialect, stream or not) and the Kiro byte stream the upstream
sends back, cut into network reads. The bytes go through the gateway's own reply path as they do
in a request: `ReplyMapper.feed` per read (the first events waited for as `Upstream._first_batch`
does), `ReplyStream`, the dialect's renderer, the handler's `guard`, then `StreamedReply` serving
an ASGI `send` that records every body; a non-streamed reply through `ReplyStream.collect` and the
dialect's `whole`. What varies between two identical requests (generated ids, timestamps) is
replaced by numbered placeholders, in order of appearance, so the relations between them are kept.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request

from kiro_gateway.app.handler import guard
from kiro_gateway.config import Settings
from kiro_gateway.core.conversation import Ping, ReplyEvent
from kiro_gateway.dialects.anthropic import AnthropicDialect
from kiro_gateway.dialects.gemini import GeminiDialect
from kiro_gateway.dialects.openai_chat import OpenAIChatDialect
from kiro_gateway.dialects.openai_responses import OpenAIResponsesDialect
from kiro_gateway.kiro.eventstream import encode_event, encode_exception
from kiro_gateway.kiro.events import ReplyMapper
from kiro_gateway.kiro.models import ModelMapper
from kiro_gateway.kiro.request import RequestOptions, build_request
from kiro_gateway.upstream.stream import ReplyStream
from kiro_gateway.web.http import JSONResponse, StreamedReply

__all__ = ["CASES", "DIALECTS", "render", "GOLDEN", "load_golden", "write_golden"]

GOLDEN = Path(__file__).parent / "fixtures" / "rendered" / "sequences.json.gz"
TOOL = {"name": "get_weather", "description": "Weather for a city",
        "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
FILLER = "The quick brown fox jumps over the lazy dog, and the answer is forty-two. "


# -- the upstream side ------------------------------------------------------------------------


def _text(n: int, chars: int = 20, prefix: str = "") -> list[bytes]:
    body = prefix + (FILLER * (1 + n * chars // len(FILLER)))[: n * chars]
    size = -(-len(body) // n)
    return [encode_event("assistantResponseEvent", orjson.dumps({"content": body[i:i + size]}))
            for i in range(0, len(body), size)]


def _tool(tid: str, name: str, args: str, parts: int) -> list[bytes]:
    size = -(-len(args) // parts)
    out = [encode_event("toolUseEvent", orjson.dumps({"name": name, "toolUseId": tid, "input": args[i:i + size]}))
           for i in range(0, len(args), size)]
    return out + [encode_event("toolUseEvent", orjson.dumps({"name": name, "toolUseId": tid, "stop": True}))]


_TAIL = [encode_event("meteringEvent", orjson.dumps({"unit": "credit", "unitPlural": "credits", "usage": 0.0123})),
         encode_event("contextUsageEvent", orjson.dumps({"contextUsagePercentage": 1.25}))]


def _thinking(n: int) -> list[bytes]:
    """In-band reasoning (the tags split across frames), then the answer."""
    raw = "<thinking>\nLet me think about the weather, step by step. " * 1 + "Cloudy.\n</thinking>\n\nIt is sunny."
    parts = [raw[i:i + 7] for i in range(0, len(raw), 7)]
    return [encode_event("assistantResponseEvent", orjson.dumps({"content": p})) for p in parts] + _text(n)


def _reasoning() -> list[bytes]:
    """Kiro's native reasoning channel, then text, then Kiro's own usage and stop reason."""
    return ([encode_event("reasoningContentEvent", orjson.dumps({"text": t})) for t in ("Weigh ", "it. ", "Done.")]
            + _text(5)
            + [encode_event("metadataEvent", orjson.dumps({"tokenUsage": {"inputTokens": 321, "outputTokens": 45},
                                                           "stopReason": "end_turn"}))])


def _tools() -> list[bytes]:
    return (_text(3) + _tool("tooluse_A1", "get_weather", '{"city": "Paris, \\"FR\\""}', 4)
            + _tool("tooluse_B2", "get_weather", '{"city": "Oslo"}', 1))


def _error() -> list[bytes]:
    return _text(4) + [encode_exception("ThrottlingException", orjson.dumps({"message": "slow down"}))]


def _frames(kind: str) -> list[bytes]:
    if kind.startswith("text"):
        return _text(int(kind[4:])) + _TAIL
    return {"thinking": _thinking(10) + _TAIL, "reasoning": _reasoning(), "tools": _tools() + _TAIL,
            "error": _error(), "stop": _text(30) + _TAIL}[kind]


def _reads(frames: list[bytes], cut: str) -> list[bytes]:
    """The frames as network reads: one a read, several a read, cut across frames, or all at once."""
    if cut == "one":
        return list(frames)
    if cut == "seven":
        return [b"".join(frames[i:i + 7]) for i in range(0, len(frames), 7)]
    raw = b"".join(frames)
    if cut == "all":
        return [raw]
    return [raw[i:i + 997] for i in range(0, len(raw), 997)]  # "bytes": 997 bytes a read


# -- the client side --------------------------------------------------------------------------

MODEL = "claude-sonnet-4.5"


def _anthropic(stream: bool, think: bool, stop: bool) -> dict:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 2000, "stream": stream,
                            "messages": [{"role": "user", "content": "Weather in Paris?"}],
                            "tools": [{"name": TOOL["name"], "description": TOOL["description"],
                                       "input_schema": TOOL["schema"]}]}
    if think:
        body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    if stop:
        body["stop_sequences"] = ["lazy dog, and"]
    return body


def _chat(stream: bool, think: bool, stop: bool) -> dict:
    body: dict[str, Any] = {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "Weather?"}],
                            "tools": [{"type": "function", "function": {"name": TOOL["name"],
                                       "description": TOOL["description"], "parameters": TOOL["schema"]}}]}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if think:
        body["reasoning_effort"] = "high"
    if stop:
        body["stop"] = ["lazy dog, and"]
    return body


def _responses(stream: bool, think: bool, stop: bool) -> dict:
    body: dict[str, Any] = {"model": MODEL, "stream": stream, "input": "Weather?", "instructions": "Be brief.",
                            "tools": [{"type": "function", "name": TOOL["name"], "description": TOOL["description"],
                                       "parameters": TOOL["schema"]}]}
    if think:
        body["reasoning"] = {"effort": "high", "summary": "auto"}
    return body


def _gemini(stream: bool, think: bool, stop: bool) -> dict:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "Weather?"}]}],
                            "tools": [{"functionDeclarations": [{"name": TOOL["name"], "description": TOOL["description"],
                                                                 "parameters": TOOL["schema"]}]}]}
    cfg: dict[str, Any] = {}
    if think:
        cfg["thinkingConfig"] = {"includeThoughts": True, "thinkingBudget": 1024}
    if stop:
        cfg["stopSequences"] = ["lazy dog, and"]
    if cfg:
        body["generationConfig"] = cfg
    return body


# name → (dialect factory, request body builder, path params)
DIALECTS: dict[str, tuple[Any, Any, dict[str, str]]] = {
    "anthropic": (AnthropicDialect, _anthropic, {}),
    "openai_chat": (OpenAIChatDialect, _chat, {}),
    "openai_responses": (OpenAIResponsesDialect, _responses, {}),
    "gemini": (GeminiDialect, _gemini, {}),
    "gemini_array": (lambda: GeminiDialect(array=True), _gemini, {}),
}

# case name → (frames kind, how they are read, thinking asked for, stop sequences)
_SCENARIOS = {
    "text10": ("text10", "one", False, False),
    "text100": ("text100", "one", False, False),
    "text1000": ("text1000", "one", False, False),
    "text100_seven": ("text100", "seven", False, False),
    "text1000_bytes": ("text1000", "bytes", False, False),
    "text1000_all": ("text1000", "all", False, False),
    "thinking_one": ("thinking", "one", True, False),
    "thinking_seven": ("thinking", "seven", True, False),
    "reasoning_one": ("reasoning", "one", True, False),
    "tools_one": ("tools", "one", False, False),
    "tools_all": ("tools", "all", False, False),
    "error_one": ("error", "one", False, False),
    "error_all": ("error", "all", False, False),
    "stop_one": ("stop", "one", False, True),
    "ping_one": ("text10", "one", False, False),  # a keep-alive after the first batch
}
CASES = [f"{d}/{s}/{'stream' if st else 'whole'}" for d in DIALECTS for s in _SCENARIOS for st in (True, False)
         if not (d == "gemini_array" and not st)]


def _request(dialect: str, stream: bool) -> Request:
    path = "/v1beta/models/" + MODEL + (":streamGenerateContent" if stream else ":generateContent")
    rest = MODEL + (":streamGenerateContent" if stream else ":generateContent")
    return Request({"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b"",
                    "path_params": {"rest": rest} if dialect.startswith("gemini") else {}})


class _Content:
    def __init__(self, reads: list[bytes], pace: float) -> None:
        self.reads = reads
        self.pace = pace

    async def readany(self) -> bytes:
        await asyncio.sleep(self.pace)
        return self.reads.pop(0) if self.reads else b""


class _Resp:
    def __init__(self, reads: list[bytes], pace: float = 0.0) -> None:
        self.content = _Content(reads, pace)

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


async def _first(resp: _Resp, mapper: ReplyMapper) -> list:
    while True:  # as Upstream._first_batch does
        chunk = await resp.content.readany()
        if not chunk:
            return []
        events = mapper.feed(chunk)
        if events:
            return events


async def _with_ping(batches: AsyncIterator[list[ReplyEvent]]) -> AsyncIterator[list[ReplyEvent]]:
    n = 0
    async for batch in batches:
        yield batch
        n += 1
        if n in (1, 3):
            yield [Ping()]


async def _render(case: str, window: float = 0.0, pace: float = 0.0, writes: list[int] | None = None) -> bytes:
    name, scenario, kind = case.split("/")
    stream = kind == "stream"
    frames, cut, think, stop = _SCENARIOS[scenario]
    factory, build, _ = DIALECTS[name]
    dialect = factory()
    req = _request(name, stream)
    conv = dialect.parse(build(stream, think, stop), req)
    kiro = build_request(conv, ModelMapper(), RequestOptions())
    mapper = ReplyMapper(kiro.tool_names, kiro.thinking, kiro.model.context_window, max(1, kiro.size // 4))
    resp = _Resp(_reads(_frames(frames), cut), pace)
    first = await _first(resp, mapper)
    reply = ReplyStream(resp, mapper, first, Settings(), kiro, SimpleNamespace(), conv.json_mode,  # type: ignore[arg-type]
                        stop_sequences=conv.stop_sequences)
    if not stream:
        try:
            events = await reply.collect()
            return b"200 " + JSONResponse(dialect.whole(conv, events, reply.input_estimate)).body
        except Exception as e:  # noqa: BLE001 - a GatewayError: the status and body the client would get
            status, body = dialect.error(e)
            return str(status).encode() + b" " + body
    batches = aiter(reply)
    if scenario.startswith("ping"):
        batches = _with_ping(batches)
    chunks = dialect.stream(conv, batches, reply.input_estimate)
    out: list[bytes] = []

    async def receive() -> dict:
        await asyncio.Event().wait()  # the client never leaves
        return {}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            out.append(message["body"])

    window_arg = (window,) if window else ()  # (the code the goldens came from had no window)
    await StreamedReply(guard(chunks, dialect), dialect.stream_media_type, {}, *window_arg)({}, receive, send)
    if writes is not None:
        writes.append(len(out))
    return b"".join(out)


_IDS = re.compile(rb'(msg_|chatcmpl-|resp_|rs_|fc_)[0-9a-f]{24,32}|"(responseId)":"[A-Za-z0-9_-]{22}"|'
                  rb'"(created|created_at)":\d{10}')


def normalise(data: bytes) -> bytes:
    seen: dict[bytes, bytes] = {}

    def sub(m: re.Match[bytes]) -> bytes:
        whole = m.group(0)
        if m.group(3):
            return b'"' + m.group(3) + b'":1700000000'
        if whole not in seen:
            label = m.group(1) or m.group(2)
            seen[whole] = label + b"#" + str(len(seen)).encode()
        return (b'"responseId":"' + seen[whole] + b'"') if m.group(2) else seen[whole]

    return _IDS.sub(sub, data)


def render(case: str, window: float = 0.0, pace: float = 0.0, writes: list[int] | None = None) -> str:
    """The normalised bytes of `case`; `window`: StreamedReply's write window (s); `pace`: seconds
    before each upstream read; `writes`: gets the number of body writes appended."""
    return normalise(asyncio.run(_render(case, window, pace, writes))).decode()


def load_golden() -> dict[str, str]:
    return orjson.loads(gzip.decompress(GOLDEN.read_bytes()))


def write_golden() -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps({c: render(c) for c in CASES}, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    GOLDEN.write_bytes(gzip.compress(data, mtime=0))


if __name__ == "__main__":  # rewrite the goldens: only from code whose output is known good
    sys.path.insert(0, str(Path(__file__).parent))
    write_golden()
    print(f"wrote {len(CASES)} cases to {GOLDEN}")
