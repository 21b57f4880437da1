"""Helpers for the fake Kiro tests: request bodies, a client call, and two independent decoders.

(Named uniquely: test directories have no __init__.py, so module names must not collide.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import orjson
from botocore.eventstream import EventStreamBuffer

from kiro_gateway.kiro.eventstream import EventStreamDecoder

MODEL = "claude-sonnet-4.5"
PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def tool_spec(name: str = "get_weather", description: str = "Get the weather for a city.") -> dict:
    return {
        "toolSpecification": {
            "name": name,
            "description": description,
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
        }
    }


def user(content: str = "Hello", results: list | None = None, tools: list | None = None, **extra) -> dict:
    msg = {"content": content, "modelId": MODEL, "origin": "AI_EDITOR", **extra}
    ctx = {}
    if results is not None:
        ctx["toolResults"] = results
    if tools is not None:
        ctx["tools"] = tools
    if ctx:
        msg["userInputMessageContext"] = ctx
    return {"userInputMessage": msg}


def assistant(content: str = "Hi.", uses: list | None = None) -> dict:
    msg = {"content": content}
    if uses is not None:
        msg["toolUses"] = uses
    return {"assistantResponseMessage": msg}


def result(tool_use_id: str, text: str = "sunny", status: str = "success") -> dict:
    return {"toolUseId": tool_use_id, "content": [{"text": text}], "status": status}


def body(content: str = "Hello", history: list | None = None, **current) -> dict:
    state = {
        "conversationId": "0c6d5b8e-2f4a-4c1e-9f7a-1d2e3f4a5b6c",
        "chatTriggerType": "MANUAL",
        "currentMessage": user(content, **current),
    }
    if history is not None:
        state["history"] = history
    return {"conversationState": state}


def full_body() -> dict:
    """A valid body that exercises every part the validator looks at."""
    return body(
        "",
        history=[
            user("What is the weather in Paris?", images=[{"format": "png", "source": {"bytes": PNG_1PX}}]),
            assistant(" ", uses=[{"toolUseId": "tooluse_a", "name": "get_weather", "input": {"city": "Paris"}}]),
            user("", results=[result("tooluse_a")]),
            assistant("It is sunny. Checking Rome.", uses=[
                {"toolUseId": "tooluse_b", "name": "get_weather", "input": {"city": "Rome"}},
                {"toolUseId": "tooluse_c", "name": "get_time", "input": {}},
            ]),
        ],
        results=[result("tooluse_b", "rain"), result("tooluse_c", "noon", status="error")],
        tools=[tool_spec(), tool_spec("get_time", "Get the time.")],
    ) | {"profileArn": "arn:aws:codewhisperer:us-east-1:699475941385:profile/FAKE"}


@dataclass
class Replace:
    """Returned by a mutation to replace the whole body (other return values are ignored)."""

    value: object


def mutated(base: dict, fn):
    b = copy.deepcopy(base)
    out = fn(b)
    return out.value if isinstance(out, Replace) else b


@dataclass
class Result:
    status: int
    headers: dict
    raw: bytes

    @property
    def json(self):
        return orjson.loads(self.raw)

    @property
    def events(self) -> list[tuple[str, object]]:
        return events(self.raw)


async def generate(http, fake, payload, token: str | None = "demo-token", headers: dict | None = None) -> Result:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    async with http.post(fake.url("/generateAssistantResponse"), data=data, headers=hdrs) as resp:
        return Result(resp.status, dict(resp.headers), await resp.read())


def decode_botocore(raw: bytes) -> list[tuple[dict, bytes]]:
    """AWS's own decoder: checks both CRCs and the framing independently of ours."""
    buf = EventStreamBuffer()
    buf.add_data(raw)
    return [(dict(m.headers), m.payload) for m in buf]


def decode_ours(raw: bytes) -> list[tuple[dict, bytes]]:
    dec = EventStreamDecoder()
    out = []
    for i in range(0, len(raw), 7):  # odd-sized pieces: frames straddle reads
        out += [(m.headers, m.payload) for m in dec.feed(raw[i : i + 7])]
    dec.raise_if_truncated()
    assert dec.errors_seen == 0
    return out


def events(raw: bytes) -> list[tuple[str, object]]:
    """(event or exception type, parsed payload) per frame; both decoders must agree."""
    theirs, ours = decode_botocore(raw), decode_ours(raw)
    assert theirs == ours
    out = []
    for headers, payload in theirs:
        kind = headers.get(":message-type", "event")
        name = {"event": headers.get(":event-type"), "exception": headers.get(":exception-type")}.get(
            kind, f"error:{headers.get(':error-code')}"
        )
        out.append((name, orjson.loads(payload)))
    return out


def text_of(evs) -> str:
    return "".join(p["content"] for name, p in evs if name == "assistantResponseEvent")
