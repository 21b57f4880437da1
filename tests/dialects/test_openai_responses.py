"""OpenAI Responses dialect: real Codex bodies, parsing, rendering, the response store, no 500."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import hostile
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_gateway.core.conversation import (
    ErrorEvent,
    GatewayError,
    ImagePart,
    Message,
    Stop,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingEnd,
    ThinkingPart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    Usage,
)
from kiro_gateway.dialects.openai_responses import OpenAIResponsesDialect, ResponseStore, parse_request
from kiro_gateway.dialects.openai_responses.render import ResponseRenderer, stream_response, whole_response
from kiro_gateway.fake.state import DEFAULT_MODELS
from kiro_gateway.fake.validation import validate_request
from kiro_gateway.kiro.models import ModelMapper
from kiro_gateway.kiro.request import RequestOptions, build_request

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codex"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAAAAgABVKJPXQAAAABJRU5ErkJggg=="
FN = {"type": "function", "name": "get_weather", "description": "Weather", "strict": False,
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def kiro_ok(conv) -> dict:
    req = build_request(conv, ModelMapper(), RequestOptions())
    body = orjson.loads(req.body)
    assert validate_request(body, len(req.body), frozenset(DEFAULT_MODELS)) is None
    return body["conversationState"]


@pytest.mark.parametrize("name", ["turn1_request.json", "turn2_request.json"])
def test_real_codex_bodies_convert_to_valid_kiro_requests(name):
    body = load(name)
    conv = parse_request(body)
    assert conv.stream and not conv.store and conv.summary and conv.encrypted
    assert conv.session_id == body["prompt_cache_key"]
    assert conv.system.startswith("You are a coding agent running in the Codex CLI")
    names = [t.name for t in conv.tools]
    assert "exec_command" in names and "multi_agent_v1__spawn_agent" in names
    assert "web_search" not in names and len(names) == 12  # 7 functions + 5 namespaced, web_search dropped
    assert conv.namespaces["multi_agent_v1__close_agent"] == ("multi_agent_v1", "close_agent")
    assert conv.messages[0].role == "user" and conv.messages[0].parts[-1] == TextPart("create the marker file")
    state = kiro_ok(conv)
    tools = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
    assert {t["toolSpecification"]["name"] for t in tools} >= {"exec_command", "multi_agent_v1__close_agent"}


def test_codex_turn2_pairs_the_call_with_its_output():
    conv = parse_request(load("turn2_request.json"))
    call, result = conv.messages[1].parts[0], conv.messages[2].parts[0]
    assert isinstance(call, ToolCallPart) and call.name == "exec_command"
    assert call.arguments == {"cmd": "echo hello-from-codex > out.txt"}
    assert isinstance(result, ToolResultPart) and result.tool_call_id == call.id
    assert "Process exited with code 0" in result.content
    state = kiro_ok(conv)
    assert state["history"][-1]["assistantResponseMessage"]["toolUses"][0]["toolUseId"] == call.id


def test_namespaced_call_from_codex_history_keeps_its_qualified_name():
    body = load("turn1_request.json")
    body["input"] += load("namespace_call_items.json")
    conv = parse_request(body)
    assert conv.messages[-2].parts == [ToolCallPart("call_519fa18e8476", "multi_agent_v1__close_agent", {"target": "nope"})]
    kiro_ok(conv)


def test_items_messages_reasoning_and_images():
    conv = parse_request({
        "model": "claude-sonnet-4-6", "instructions": "Be brief.",
        "reasoning": {"effort": "low"},
        "input": [
            {"role": "developer", "content": "Dev rules"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A cat."}]},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"role": "user", "content": "thanks"},
        ]})
    assert conv.system == "Be brief.\n\nDev rules" and not conv.stream and conv.store
    assert conv.thinking.mode == "adaptive" and conv.thinking.effort == "low"
    assert conv.messages[0].parts == [TextPart("look"), ImagePart("image/png", PNG)]
    assert conv.messages[1].parts == [ThinkingPart("thinking"), TextPart("A cat.")]
    assert conv.messages[2].parts == [TextPart("thanks")]
    kiro_ok(conv)


def test_function_call_output_with_parts_and_string_input():
    conv = parse_request({"model": "m", "input": [
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_text", "text": "see image"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]}]})
    result = conv.messages[1].parts[0]
    assert result.content == "see image" and result.images == [ImagePart("image/png", PNG)]
    assert parse_request({"model": "m", "input": "hello"}).messages == [Message("user", [TextPart("hello")])]


def test_tool_choice_and_text_format():
    conv = parse_request({"model": "m", "input": "x", "tools": [FN], "tool_choice": {"type": "function", "name": "get_weather"},
                          "text": {"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}}}})
    assert (conv.tool_choice.mode, conv.tool_choice.name) == ("tool", "get_weather")
    assert conv.json_mode and conv.json_schema == {"type": "object"}
    assert parse_request({"model": "m", "input": "x", "tool_choice": "required"}).tool_choice.mode == "any"


@pytest.mark.parametrize("body,param,code", [
    ({"input": "x"}, "model", None),
    ({"model": "m"}, "input", None),
    ({"model": "m", "input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role", None),
    ({"model": "m", "input": [{"type": "teleport"}]}, "input[0].type", None),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/a.png"}]}]},
     "input[0].content[0].image_url", None),
    ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id", None),
    ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name", None),
    ({"model": "m", "input": "x", "reasoning": {"effort": "huge"}}, "reasoning.effort", None),
    ({"model": "m", "input": "x", "previous_response_id": "resp_nope"}, "previous_response_id",
     "previous_response_not_found"),
])
def test_invalid_bodies_name_the_field(body, param, code):
    with pytest.raises(GatewayError) as e:
        parse_request(body, ResponseStore())
    status, raw = OpenAIResponsesDialect().error(e.value)
    err = orjson.loads(raw)["error"]
    assert status == 400 and err["type"] == "invalid_request_error" and err["param"] == param and err["code"] == code


async def _batches(events):
    yield events


def _events(raw: bytes) -> list[dict]:
    out = []
    for block in raw.decode().split("\n\n"):
        lines = block.split("\n")
        if len(lines) == 2 and lines[0].startswith("event: "):
            data = orjson.loads(lines[1][6:])
            assert data["type"] == lines[0][7:]
            out.append(data)
    return out


def _stream(conv, events, save=None) -> list[dict]:
    async def run() -> bytes:
        return b"".join([c async for c in stream_response(ResponseRenderer(conv, 10, save), _batches(events))])
    return _events(asyncio.run(run()))


def test_stream_events_in_order_with_summary_and_namespace():
    conv = parse_request({"model": "m", "input": "x", "stream": True, "reasoning": {"effort": "high", "summary": "auto"},
                          "include": ["reasoning.encrypted_content"],
                          "tools": [{"type": "namespace", "name": "ns", "tools": [FN]}]})
    saved = []
    evs = _stream(conv, [ThinkingDelta("think"), ThinkingEnd("sig"), TextDelta("Hi"), TextDelta("!"),
                         ToolCallStart("tooluse_1", "ns__get_weather"), ToolCallDelta("tooluse_1", '{"city":'),
                         ToolCallDelta("tooluse_1", '"Oslo"}'), ToolCallEnd("tooluse_1"), Usage(100, 20), Stop("tool_use")],
                  lambda rid, resp, parts: saved.append((rid, orjson.loads(resp), parts)))
    types = [e["type"] for e in evs]
    assert [e["sequence_number"] for e in evs] == list(range(len(evs)))
    assert types == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    reasoning, message, call = (e["item"] for e in evs if e["type"] == "response.output_item.done")
    assert reasoning["summary"] == [{"type": "summary_text", "text": "think"}] and reasoning["encrypted_content"]
    assert message["content"][0]["text"] == "Hi!"
    assert (call["name"], call["namespace"], call["call_id"]) == ("get_weather", "ns", "tooluse_1")
    assert call["arguments"] == '{"city":"Oslo"}'
    done = evs[-1]["response"]
    assert done["status"] == "completed" and [o["type"] for o in done["output"]] == ["reasoning", "message", "function_call"]
    assert done["usage"] == {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
                             "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 120}
    rid, resp, output = saved[0]
    assert rid == resp["id"] == evs[0]["response"]["id"]
    assert resp == {**done, "instructions": None, "tools": []}  # the echo is in the kept body
    assert output == done["output"]  # what the store keeps: the output items, valid as input items
    # The reasoning item, echoed back by a store:false client, restores the thinking text.
    again = parse_request({"model": "m", "input": [reasoning, call,
                                                   {"type": "function_call_output", "call_id": "tooluse_1", "output": "ok"}]})
    assert again.messages[0].parts == [ThinkingPart("think"), ToolCallPart("tooluse_1", "ns__get_weather", {"city": "Oslo"})]


def test_stream_without_summary_uses_reasoning_text_and_max_tokens_is_incomplete():
    conv = parse_request({"model": "m", "input": "x", "reasoning": {"effort": "high"}})
    evs = _stream(conv, [ThinkingDelta("t"), Usage(1, 1), Stop("max_tokens")])
    types = [e["type"] for e in evs]
    assert "response.reasoning_text.delta" in types and "response.reasoning_summary_text.delta" not in types
    assert types[-1] == "response.incomplete"
    assert evs[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_stream_error_is_response_failed():
    conv = parse_request({"model": "m", "input": "x"})
    evs = _stream(conv, [TextDelta("part"), ErrorEvent("rate_limit", "slow down")])
    assert evs[-1]["type"] == "response.failed"
    assert evs[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}
    assert evs[-2]["type"] == "response.output_item.done"  # the open message was closed first


def test_whole_response_and_store_round_trip():
    store = ResponseStore(max_entries=2)
    dialect = OpenAIResponsesDialect(store)
    conv = parse_request({"model": "m", "input": "first"}, store)
    resp = orjson.loads(dialect.whole(conv, [TextDelta("one"), Usage(3, 1), Stop("end_turn")], 3))
    assert resp["object"] == "response" and resp["status"] == "completed" and resp["output"][0]["type"] == "message"
    assert orjson.loads(store.get(resp["id"]).response) == orjson.loads(orjson.dumps(resp))
    nxt = parse_request({"model": "m", "input": "second", "previous_response_id": resp["id"]}, store)
    assert [(m.role, m.parts) for m in nxt.messages] == [
        ("user", [TextPart("first")]), ("assistant", [TextPart("one")]), ("user", [TextPart("second")])]
    assert nxt.previous_response_id == resp["id"]
    # store: false keeps nothing; the LRU bound evicts the oldest
    dialect.whole(parse_request({"model": "m", "input": "x", "store": False}, store), [Stop("end_turn")], 1)
    assert len(store) == 1
    for _ in range(2):
        dialect.whole(parse_request({"model": "m", "input": "x"}, store), [Stop("end_turn")], 1)
    assert store.get(resp["id"]) is None and len(store) == 2


def test_whole_response_raises_on_error():
    with pytest.raises(GatewayError):
        whole_response(ResponseRenderer(parse_request({"model": "m", "input": "x"}), 1),
                       [TextDelta("a"), ErrorEvent("upstream", "bad")])


def test_store_ttl_expires():
    store = ResponseStore(ttl=-1)
    store.put("r", b"[]", b'{"input": []}', b"[]", b"{}")
    assert store.get("r") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8) | hostile.leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "text", "role", "content", "name", "arguments", "call_id", "output", "namespace",
                         "image_url", "summary", "encrypted_content", "tools", "parameters", "format", "schema"]),
        inner, max_size=4),
    max_leaves=12)
text = st.text(max_size=8)
part = st.fixed_dictionaries({"type": st.sampled_from(["input_text", "output_text", "input_image", "input_file", "x"])},
                             optional={"text": st.one_of(text, json_values),
                                       "image_url": st.sampled_from([f"data:image/png;base64,{PNG}", "https://a/b.png",
                                                                     "data:image/png;base64,!!", None, 3])})
item = st.one_of(
    st.fixed_dictionaries({"type": st.just("message"),
                           "role": st.sampled_from(["user", "assistant", "developer", "system", "robot"]),
                           "content": st.one_of(text, st.lists(part, max_size=3), json_values)}),
    st.fixed_dictionaries({"type": st.just("function_call"), "call_id": st.sampled_from(["c1", "c2"]),
                           "name": st.sampled_from(["f", "close_agent"]),
                           "arguments": st.one_of(st.just('{"a":1}'), json_values)},
                          optional={"namespace": st.sampled_from(["ns", None, 3])}),
    st.fixed_dictionaries({"type": st.just("function_call_output"), "call_id": st.sampled_from(["c1", "c2", 5]),
                           "output": st.one_of(text, st.lists(part, max_size=2), json_values)}),
    st.fixed_dictionaries({"type": st.sampled_from(["reasoning", "web_search_call", "bogus"])},
                          optional={"summary": json_values, "encrypted_content": st.sampled_from(["kg1:aGk=", "kg1:@@",
                                                                                                  "opaque", 4])}),
    json_values)
tool = st.one_of(st.just(FN), st.just({"type": "web_search"}),
                 st.fixed_dictionaries({"type": st.just("namespace"), "name": st.sampled_from(["ns", 3]),
                                        "tools": st.one_of(st.lists(st.just(FN), max_size=2), json_values)}),
                 json_values)
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["claude-sonnet-4-6", "claude-sonnet-4-6", "claude-haiku-4-5", "gpt-5", 7]),
     "input": st.one_of(text, st.lists(item, min_size=1, max_size=5), st.lists(item, min_size=1, max_size=5),
                        json_values)},
    optional={"instructions": st.one_of(text, json_values), "tools": st.one_of(st.lists(tool, max_size=3), json_values),
              "tool_choice": json_values, "reasoning": st.one_of(st.just({"effort": "low", "summary": "auto"}), json_values),
              "stream": st.booleans(), "store": json_values, "include": json_values, "text": json_values,
              "max_output_tokens": st.one_of(st.integers(0, 50), json_values),
              "previous_response_id": st.sampled_from([None, None, "resp_nope", 3])})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=bodies)
def test_no_body_makes_the_gateway_answer_500(gateway, http, body):
    r = http.post(gateway.base_url + "/v1/responses", content=hostile.expand(orjson.dumps(body)), timeout=10,
                  headers={"authorization": f"Bearer {gateway.api_key}", "content-type": "application/json"})
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        err = r.json()["error"]
        assert err["type"] and err["message"]
    elif body.get("stream") is True:
        assert any(f"event: response.{end}" in r.text for end in ("completed", "incomplete", "failed"))


def test_store_is_bounded_by_bytes_and_chains_through_tool_calls():
    store = ResponseStore(max_entries=100, max_bytes=4000)
    dialect = OpenAIResponsesDialect(store)
    tools = [{"type": "function", "name": "read", "parameters": {"type": "object", "properties": {}}}]
    conv = parse_request({"model": "m", "input": "go", "tools": tools}, store)
    first = orjson.loads(dialect.whole(conv, [ToolCallStart("call_1", "read"), ToolCallDelta("call_1", '{"p": 1}'),
                                              ToolCallEnd("call_1"), Usage(3, 1), Stop("tool_use")], 3))
    nxt = parse_request({"model": "m", "previous_response_id": first["id"], "tools": tools,
                         "input": [{"type": "function_call_output", "call_id": "call_1", "output": "data"}]}, store)
    assert [m.role for m in nxt.messages] == ["user", "assistant", "user"]
    assert nxt.messages[1].parts == [ToolCallPart("call_1", "read", {"p": 1})]
    assert nxt.messages[2].parts[0].content == "data"
    big = "x" * 3000
    for _ in range(3):
        dialect.whole(parse_request({"model": "m", "input": big}, store), [Stop("end_turn")], 1)
    assert store.bytes <= 4000 and len(store) == 1  # older entries gave way to the byte bound


def test_store_keeps_the_raw_body_and_chains_three_turns():
    """The store keeps the request body by reference and joins the items only when continued."""
    store = ResponseStore()
    dialect = OpenAIResponsesDialect(store)
    ids = []
    for i, inp in enumerate(["one", [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two"}]}],
                             "three"]):
        body = {"model": "m", "input": inp, **({"previous_response_id": ids[-1]} if ids else {})}
        raw = orjson.dumps(body)
        conv = parse_request(orjson.loads(raw), store, raw=raw)
        assert conv.source is raw  # kept, not re-serialised
        resp = orjson.loads(dialect.whole(conv, [TextDelta(f"answer {i}"), Stop("end_turn")], 1))
        ids.append(resp["id"])
    nxt = parse_request({"model": "m", "input": "four", "previous_response_id": ids[-1]}, store)
    assert [(m.role, [p.text for p in m.parts]) for m in nxt.messages] == [
        ("user", ["one"]), ("assistant", ["answer 0"]), ("user", ["two"]), ("assistant", ["answer 1"]),
        ("user", ["three"]), ("assistant", ["answer 2"]), ("user", ["four"])]
    assert len(orjson.loads(store.get(ids[-1]).items)) == 6


def test_templated_events_are_byte_identical_to_the_generic_encoding():
    """Text deltas and the final event are written from templates: the bytes must be exactly what
    encoding the same event generically (sse.event of the parsed payload) gives."""
    from kiro_gateway.dialects import sse

    conv = parse_request({"model": "m", "input": "x", "stream": True, "instructions": "Be \"brief\".\n",
                          "tools": [FN]})

    async def run() -> bytes:
        events = [TextDelta('a "quoted"\n\u2028 ü'), TextDelta("b"), ToolCallStart("c1", "get_weather"),
                  ToolCallDelta("c1", "{}"), ToolCallEnd("c1"), TextDelta("again"), Usage(5, 2), Stop("end_turn")]
        return b"".join([c async for c in stream_response(ResponseRenderer(conv, 10), _batches(events))])

    raw = asyncio.run(run())
    chunks = [c for c in raw.split(b"\n\n") if c]
    names = []
    for chunk in chunks:
        head, data = chunk.split(b"\ndata: ", 1)
        name = head.removeprefix(b"event: ").decode()
        names.append(name)
        assert sse.event(name, orjson.loads(data)) == chunk + b"\n\n", name
    assert names.count("response.output_text.delta") == 3 and names[-1] == "response.completed"
    seqs = [orjson.loads(c.split(b"\ndata: ", 1)[1])["sequence_number"] for c in chunks]
    assert seqs == list(range(len(chunks)))
