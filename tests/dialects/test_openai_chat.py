"""OpenAI Chat Completions dialect: parsing, rendering, and no 500 whatever the body."""

from __future__ import annotations

import asyncio

import hostile
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_gateway.core.conversation import (
    ErrorEvent,
    GatewayError,
    ImagePart,
    Stop,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    Usage,
)
from kiro_gateway.dialects.openai_chat import OpenAIChatDialect, parse_request
from kiro_gateway.dialects.openai_chat.render import stream_chunks, whole_completion
from kiro_gateway.fake.state import DEFAULT_MODELS
from kiro_gateway.fake.validation import validate_request
from kiro_gateway.kiro.models import ModelMapper
from kiro_gateway.kiro.request import RequestOptions, build_request

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAAAAgABVKJPXQAAAABJRU5ErkJggg==")
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def full_body() -> dict:
    return {
        "model": "claude-sonnet-4-6",
        "max_completion_tokens": 500,
        "reasoning_effort": "medium",
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [TOOL, {"type": "custom", "custom": {"name": "freeform"}}],
        "tool_choice": "required",
        "stop": "END",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
                                         {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
            {"role": "assistant", "content": None, "reasoning_content": "Need the tool",
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "Sunny"}]},
            {"role": "system", "content": "Mid-conversation note"},
            {"role": "user", "content": "Thanks"},
        ],
    }


def test_full_body_parses_and_converts_to_a_valid_kiro_request():
    conv = parse_request(full_body())
    assert conv.system == "You are terse.\n\nUse tools."
    assert conv.max_tokens == 500 and conv.stream and conv.include_usage
    assert conv.thinking.mode == "adaptive" and conv.thinking.effort == "medium"
    assert [t.name for t in conv.tools] == ["get_weather"]  # the custom tool is dropped
    assert conv.tool_choice.mode == "any" and conv.stop_sequences == ["END"]
    user, assistant, result, note, last = conv.messages
    assert user.parts[0] == TextPart("Weather in Paris?")
    assert user.parts[1] == ImagePart("image/png", PNG)
    assert assistant.parts == [ThinkingPart("Need the tool"), ToolCallPart("call_1", "get_weather", {"city": "Paris"})]
    assert result.parts == [ToolResultPart("call_1", "Sunny")]
    assert note.role == "user" and note.parts == [TextPart("Mid-conversation note")]
    req = build_request(conv, ModelMapper(), RequestOptions())
    assert validate_request(orjson.loads(req.body), len(req.body), frozenset(DEFAULT_MODELS)) is None


@pytest.mark.parametrize("rf,mode,schema", [
    ({"type": "text"}, False, None),
    ({"type": "json_object"}, True, {}),  # JSON mode without a schema: any JSON value
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}, True, {"type": "object"}),
])
def test_response_format(rf, mode, schema):
    conv = parse_request({"model": "m-sonnet", "messages": [{"role": "user", "content": "x"}], "response_format": rf})
    assert conv.json_mode is mode and conv.json_schema == schema


@pytest.mark.parametrize("tc,mode,name", [
    ("auto", "auto", None), ("none", "none", None), ("required", "any", None),
    ({"type": "function", "function": {"name": "f"}}, "tool", "f"),
])
def test_tool_choice(tc, mode, name):
    conv = parse_request({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": tc})
    assert (conv.tool_choice.mode, conv.tool_choice.name) == (mode, name)


def test_max_tokens_and_effort_none():
    conv = parse_request({"model": "m", "max_tokens": 7, "reasoning_effort": "none",
                          "messages": [{"role": "user", "content": "x"}]})
    assert conv.max_tokens == 7 and conv.thinking.mode == "off" and not conv.stream


@pytest.mark.parametrize("body,param", [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url",
                                                               "image_url": {"url": "https://x/a.png"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "huge"}, "reasoning_effort"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}},
     "response_format.type"),
])
def test_invalid_bodies_name_the_field(body, param):
    with pytest.raises(GatewayError) as e:
        parse_request(body)
    assert e.value.kind == "invalid_request"
    status, raw = OpenAIChatDialect().error(e.value)
    err = orjson.loads(raw)["error"]
    assert status == 400 and err["type"] == "invalid_request_error" and err["param"] == param, err


def test_remote_image_url_says_to_use_base64():
    with pytest.raises(GatewayError) as e:
        parse_request({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})
    assert "data URL" in e.value.message


@pytest.mark.parametrize("kind,status,etype,code", [
    ("authentication", 401, "invalid_request_error", "invalid_api_key"),
    ("rate_limit", 429, "rate_limit_error", "rate_limit_exceeded"),
    ("overloaded", 503, "server_error", "server_is_overloaded"),
    ("upstream", 502, "server_error", "upstream_error"),
])
def test_error_shape(kind, status, etype, code):
    got_status, raw = OpenAIChatDialect().error(GatewayError(kind, "boom"))
    assert got_status == status
    assert orjson.loads(raw) == {"error": {"message": "boom", "type": etype, "param": None, "code": code}}


async def _batches(events):
    yield events


def _chunks(raw: bytes) -> list:
    out = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


def test_stream_tool_calls_are_indexed_and_usage_comes_last():
    events = [ThinkingDelta("hm"), TextDelta("Let me look."), ToolCallStart("t1", "a"), ToolCallDelta("t1", '{"x"'),
              ToolCallDelta("t1", ":1}"), ToolCallEnd("t1"), ToolCallStart("t2", "b"), ToolCallEnd("t2"),
              Usage(42, 9), Stop("tool_use")]

    async def run() -> bytes:
        return b"".join([c async for c in stream_chunks(_batches(events), "m", 10, True)])

    chunks = _chunks(asyncio.run(run()))
    assert chunks[-1] == "[DONE]"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-2]]
    assert deltas[0] == {"reasoning_content": "hm"} and deltas[1] == {"content": "Let me look."}
    assert deltas[2]["tool_calls"] == [{"index": 0, "id": "t1", "type": "function",
                                        "function": {"name": "a", "arguments": ""}}]
    assert deltas[3]["tool_calls"] == [{"index": 0, "function": {"arguments": '{"x"'}}]
    assert deltas[5]["tool_calls"][0]["index"] == 1 and deltas[5]["tool_calls"][0]["id"] == "t2"
    assert chunks[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"]["prompt_tokens"] == 42
    assert chunks[-2]["usage"]["completion_tokens"] == 9 and chunks[-2]["usage"]["total_tokens"] == 51
    assert all(c["usage"] is None for c in chunks[:-2])


def test_stream_error_is_an_error_chunk():
    async def run() -> bytes:
        return b"".join([c async for c in stream_chunks(_batches([TextDelta("a"), ErrorEvent("rate_limit", "slow")]),
                                                        "m", 1, False)])

    chunks = _chunks(asyncio.run(run()))
    assert chunks[-1] == {"error": {"message": "slow", "type": "rate_limit_error", "param": None,
                                    "code": "rate_limit_exceeded"}}
    assert "usage" not in chunks[0]


@pytest.mark.parametrize("reason,finish", [("end_turn", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls")])
def test_whole_completion(reason, finish):
    body = whole_completion([TextDelta("a"), TextDelta("b"), ToolCallStart("t", "f"), Usage(5, 2), Stop(reason)], "m", 1)
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and choice["finish_reason"] == finish
    assert choice["message"]["content"] == "ab"
    assert choice["message"]["tool_calls"] == [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    assert body["usage"]["prompt_tokens"] == 5 and body["usage"]["completion_tokens"] == 2


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8) | hostile.leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "text", "role", "content", "id", "name", "arguments", "function", "url",
                         "image_url", "tool_calls", "tool_call_id", "reasoning_content", "json_schema", "schema"]),
        inner, max_size=4),
    max_leaves=12)
text = st.text(max_size=8)
part = st.fixed_dictionaries({"type": st.sampled_from(["text", "text", "image_url", "refusal", "input_audio", "bogus"])},
                             optional={"text": st.one_of(text, text, json_values), "image_url": st.one_of(
                                 json_values, st.just({"url": f"data:image/png;base64,{PNG}"}),
                                 st.just({"url": "data:image/png;base64,@@@"}))})
call = st.fixed_dictionaries({"id": st.one_of(st.sampled_from(["call_1", "call_2"]), json_values),
                              "type": st.just("function"),
                              "function": st.one_of(json_values, st.fixed_dictionaries(
                                  {"name": st.sampled_from(["f", "g"]),
                                   "arguments": st.one_of(st.just('{"a": 1}'), json_values)}))})
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "user", "assistant", "assistant", "tool", "tool",
                              "function", "bogus"]),
     "content": st.one_of(text, text, st.lists(part, max_size=3), json_values)},
    optional={"tool_calls": st.one_of(st.lists(call, max_size=2), json_values),
              "tool_call_id": st.one_of(st.sampled_from(["call_1", "call_2"]), json_values),
              "reasoning_content": st.one_of(text, json_values)})
messages = st.lists(message, min_size=1, max_size=5)
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["claude-sonnet-4-6", "claude-sonnet-4-6", "claude-opus-4-8", "claude-haiku-4-5",
                               "gpt-4o", 7]),
     "messages": st.one_of(messages, messages, messages, st.sampled_from([None, [], "hi", {}]))},
    optional={"tools": st.one_of(json_values, st.lists(st.one_of(st.just(TOOL), json_values), max_size=2)),
              "tool_choice": st.one_of(st.sampled_from(["auto", "required", "none"]), json_values),
              "reasoning_effort": st.one_of(st.sampled_from(["low", "high"]), json_values),
              "stream": st.booleans(), "stream_options": st.one_of(st.just({"include_usage": True}), json_values),
              "max_tokens": st.one_of(st.integers(0, 100), json_values),
              "max_completion_tokens": st.one_of(st.integers(0, 100), json_values),
              "response_format": st.one_of(st.sampled_from([{"type": "json_object"}, {"type": "text"}]), json_values),
              "stop": json_values, "temperature": json_values, "n": json_values})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=bodies)
def test_no_body_makes_the_gateway_answer_500(gateway, http, body):
    r = http.post(gateway.base_url + "/v1/chat/completions", content=hostile.expand(orjson.dumps(body)), timeout=10,
                  headers={"authorization": f"Bearer {gateway.api_key}", "content-type": "application/json"})
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        err = r.json()["error"]
        assert err["type"] and err["message"]
    elif body.get("stream") is True:
        assert r.text.rstrip().endswith("data: [DONE]") or '"error"' in r.text
