"""Anthropic dialect: real Claude Code bodies, and no 500 whatever the body."""

from __future__ import annotations

import json
from pathlib import Path

import hostile
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_gateway.core.conversation import GatewayError, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from kiro_gateway.dialects.anthropic import parse_request
from kiro_gateway.dialects.anthropic.parse import session_id_from
from kiro_gateway.fake.state import DEFAULT_MODELS
from kiro_gateway.fake.validation import validate_request
from kiro_gateway.kiro.models import ModelMapper
from kiro_gateway.kiro.request import RequestOptions, build_request

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize("name", ["turn1_request.json", "turn2_request.json"])
def test_real_claude_code_bodies_convert_to_valid_kiro_requests(name):
    body = load(name)
    conv = parse_request(body)
    assert conv.stream and conv.thinking.mode == "adaptive" and conv.thinking.effort == "high"
    assert conv.session_id and len(conv.tools) == len(body["tools"])
    req = build_request(conv, ModelMapper(), RequestOptions())
    assert validate_request(orjson.loads(req.body), len(req.body), frozenset(DEFAULT_MODELS)) is None
    state = orjson.loads(req.body)["conversationState"]
    assert state["conversationId"] == conv.session_id
    assert state["currentMessage"]["userInputMessage"]["modelId"] == "claude-opus-4.8"


def test_turn2_keeps_thinking_tool_use_and_result():
    conv = parse_request(load("turn2_request.json"))
    assistant = next(m for m in conv.messages if m.role == "assistant")
    kinds = [type(p) for p in assistant.parts]
    assert ThinkingPart in kinds and ToolCallPart in kinds
    last = conv.messages[-1]
    assert any(isinstance(p, ToolResultPart) for p in last.parts)


def test_system_role_messages_become_user_text():
    conv = parse_request({"model": "m-sonnet", "max_tokens": 5, "messages": [
        {"role": "user", "content": "a"}, {"role": "system", "content": "reminder"}]})
    assert [m.role for m in conv.messages] == ["user", "user"]
    assert conv.messages[1].parts == [TextPart("reminder")]


@pytest.mark.parametrize("user_id,expected", [
    ('{"device_id":"d","account_uuid":"","session_id":"abc-123"}', "abc-123"),
    ("user_0f3e_account__session_9e6c2d4b-6a0e-4c5c-9a49-8b1f3d2c1a00", "9e6c2d4b-6a0e-4c5c-9a49-8b1f3d2c1a00"),
    ("plain-user", None),
])
def test_session_id_forms(user_id, expected):
    assert session_id_from({"user_id": user_id}, None) == expected
    assert session_id_from({"user_id": user_id}, "hdr") == "hdr"


@pytest.mark.parametrize("body,where", [
    ({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"model": "claude-sonnet-4", "max_tokens": 1, "messages": []}, "messages"),
    ({"model": "claude-sonnet-4", "max_tokens": 1, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"model": "claude-sonnet-4", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
     "messages.0.content.0.type"),
    ({"model": "claude-sonnet-4", "max_tokens": 1, "thinking": {"type": "enabled"},
      "messages": [{"role": "user", "content": "x"}]}, "thinking.budget_tokens"),
])
def test_invalid_bodies_name_the_field(body, where):
    with pytest.raises(GatewayError) as e:
        parse_request(body)
    assert e.value.kind == "invalid_request" and e.value.message.startswith(where)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8) | hostile.leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "text", "role", "content", "id", "name", "input", "source", "data",
                         "media_type", "tool_use_id", "is_error", "thinking", "signature", "budget_tokens"]),
        inner, max_size=4),
    max_leaves=12)
block = st.fixed_dictionaries({"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking",
                                                        "redacted_thinking", "document", "bogus"])},
                              optional={"text": json_values, "source": json_values, "id": json_values,
                                        "name": json_values, "input": json_values, "content": json_values,
                                        "tool_use_id": json_values, "thinking": json_values})
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "bogus"]),
                                 "content": st.one_of(st.text(max_size=10), st.lists(block, max_size=3),
                                                      json_values)})
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["claude-sonnet-4-6", "claude-opus-4-8", "gpt-4o", 7]),
     "max_tokens": st.one_of(st.integers(-1, 100), json_values),
     "messages": st.one_of(st.lists(message, max_size=5), json_values)},
    optional={"system": json_values, "tools": st.one_of(json_values, st.lists(json_values, max_size=2)),
              "tool_choice": json_values, "thinking": json_values, "metadata": json_values,
              "stream": st.booleans(), "stop_sequences": json_values, "temperature": json_values})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=bodies)
def test_no_body_makes_the_gateway_answer_500(gateway, http, body):
    r = http.post(gateway.base_url + "/v1/messages", content=hostile.expand(orjson.dumps(body)), timeout=10,
                  headers={"x-api-key": gateway.api_key, "content-type": "application/json"})
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        err = r.json()
        assert err["type"] == "error" and err["error"]["type"] and err["error"]["message"]


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(st.tuples(st.sampled_from(["text", "thinking", "tool"]), st.text(max_size=12)), max_size=8))
def test_stream_events_are_byte_identical_to_the_generic_encoding(pieces):
    """Text and thinking deltas are written from templates: every event must be exactly what the
    generic encoding (sse.event of the parsed payload) gives, with indexes counting up."""
    import asyncio

    from kiro_gateway.dialects import sse
    from kiro_gateway.core.conversation import (Stop, TextDelta, ThinkingDelta, ThinkingEnd, ToolCallDelta,
                                           ToolCallEnd, ToolCallStart, Usage)
    from kiro_gateway.dialects.anthropic.render import stream_message

    events = []
    for i, (kind, text) in enumerate(pieces):
        if kind == "text":
            events.append(TextDelta(text))
        elif kind == "thinking":
            events += [ThinkingDelta(text), ThinkingEnd("sig")]
        else:
            events += [ToolCallStart(f"t{i}", "f"), ToolCallDelta(f"t{i}", "{}"), ToolCallEnd(f"t{i}")]
    events += [Usage(3, 4), Stop("end_turn")]

    async def batches():
        yield events

    async def run() -> bytes:
        return b"".join([c async for c in stream_message(batches(), "m", 3, "msg_1")])

    chunks = [c for c in asyncio.run(run()).split(b"\n\n") if c]
    texts = []
    for chunk in chunks:
        head, data = chunk.split(b"\ndata: ", 1)
        payload = orjson.loads(data)
        assert sse.event(head.removeprefix(b"event: ").decode(), payload) == chunk + b"\n\n"
        if payload["type"] == "content_block_delta" and payload["delta"]["type"] == "text_delta":
            texts.append(payload["delta"]["text"])
    assert "".join(texts) == "".join(t for k, t in pieces if k == "text")
