"""Gemini dialect: real Gemini CLI bodies, parsing details, rendering, and no 5xx whatever the body."""

from __future__ import annotations

import json
from pathlib import Path

import hostile
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_gateway.core.conversation import (
    GatewayError,
    ImagePart,
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
from kiro_gateway.dialects.gemini import parse_request
from kiro_gateway.dialects.gemini.render import whole_response
from kiro_gateway.config import Settings
from kiro_gateway.dialects.gemini.routes import count_tokens
from kiro_gateway.upstream.catalog import build_mapper
from kiro_gateway.dialects.gemini.schema import to_json_schema
from kiro_gateway.dialects.gemini.thoughts import decode_signature, encode_signature
from kiro_gateway.fake.state import DEFAULT_MODELS
from kiro_gateway.fake.validation import validate_request
from kiro_gateway.kiro.models import ModelMapper
from kiro_gateway.kiro.request import RequestOptions, build_request

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gemini_cli"
MODEL = "gemini-2.5-pro"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def mapper() -> ModelMapper:
    m = build_mapper(Settings())  # the catalogue's names, Gemini defaults included
    assert m.overrides["gemini*"] == "claude-sonnet-4.6"
    return m


def user(*parts: dict) -> dict:
    return {"role": "user", "parts": list(parts)}


def model(*parts: dict) -> dict:
    return {"role": "model", "parts": list(parts)}


# -- real Gemini CLI 0.61 bodies -----------------------------------------------------------------


@pytest.mark.parametrize("name,kiro_model", [("router_request.json", "claude-haiku-4.5"),
                                             ("turn1_request.json", "claude-sonnet-4.6"),
                                             ("turn2_request.json", "claude-sonnet-4.6")])
def test_real_gemini_cli_bodies_convert_to_valid_kiro_requests(name, kiro_model):
    path = load("requests.json")[name]["path_qs"]
    target = path.split("/models/", 1)[1].split("?")[0]
    conv = parse_request(load(name), target.rpartition(":")[0])
    req = build_request(conv, mapper(), RequestOptions())
    assert validate_request(orjson.loads(req.body), len(req.body), frozenset(DEFAULT_MODELS)) is None
    state = orjson.loads(req.body)["conversationState"]
    assert state["currentMessage"]["userInputMessage"]["modelId"] == kiro_model
    # thinkingConfig {includeThoughts, thinkingLevel: HIGH} → adaptive thinking, thoughts shown
    assert conv.thinking.mode == "adaptive" and conv.thinking.effort == "high" and conv.include_thoughts


def test_router_request_is_json_mode_with_a_lower_case_schema():
    conv = parse_request(load("router_request.json"), "gemini-3.5-flash-lite")
    assert conv.json_mode and not conv.stream
    assert conv.json_schema["type"] == "object"
    assert conv.json_schema["properties"]["complexity_score"] == {
        "type": "integer", "description": "Complexity score from 1-100."}
    assert conv.system.startswith("\nYou are a specialized Task Routing AI")


def test_turn2_pairs_the_function_response_with_its_call():
    conv = parse_request(load("turn2_request.json"), MODEL)
    call = conv.messages[1].parts[-1]
    result = conv.messages[2].parts[0]
    assert isinstance(call, ToolCallPart) and call.name == "list_directory" and call.arguments == {"dir_path": "."}
    assert isinstance(result, ToolResultPart) and result.tool_call_id == call.id == "call-1"
    assert result.content == "Directory /tmp/gcap/work is empty." and not result.is_error
    names = [t.name for t in conv.tools]
    assert "list_directory" in names and all(t.parameters["type"] == "object" for t in conv.tools)


# -- parsing details ----------------------------------------------------------------------------


def test_openapi_schema_becomes_json_schema():
    schema = {"type": "OBJECT", "propertyOrdering": ["type", "tags"], "required": ["type"], "properties": {
        "type": {"type": "STRING", "enum": ["a", "b"], "nullable": True},  # a property named "type"
        "tags": {"type": "ARRAY", "items": {"type": "INTEGER", "format": "int32"}, "example": [1]},
        "any": {"anyOf": [{"type": "NUMBER"}, {"type": "BOOLEAN"}]}}}
    assert to_json_schema(schema) == {"type": "object", "required": ["type"], "properties": {
        "type": {"type": ["string", "null"], "enum": ["a", "b"]},
        "tags": {"type": "array", "items": {"type": "integer", "format": "int32"}},
        "any": {"anyOf": [{"type": "number"}, {"type": "boolean"}]}}}
    json_schema = {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": False}
    assert to_json_schema(json_schema) == json_schema  # idempotent on JSON Schema


def test_tools_parameters_and_parameters_json_schema():
    conv = parse_request({"contents": [user({"text": "hi"})], "tools": [
        {"functionDeclarations": [
            {"name": "a", "description": "A", "parameters": {"type": "OBJECT", "properties": {"q": {"type": "STRING"}}}},
            {"name": "b", "parametersJsonSchema": {"type": "object", "properties": {"n": {"type": "number"}}}},
            {"name": "c"}]},
        {"googleSearch": {}}]}, MODEL)
    assert [(t.name, t.parameters) for t in conv.tools] == [
        ("a", {"type": "object", "properties": {"q": {"type": "string"}}}),
        ("b", {"type": "object", "properties": {"n": {"type": "number"}}}),
        ("c", {"type": "object", "properties": {}})]


def test_missing_ids_are_paired_by_name_and_order_with_stable_ids():
    body = {"contents": [
        user({"text": "weather in Paris and Rome, and the time"}),
        model({"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
              {"functionCall": {"name": "time", "args": {}}},
              {"functionCall": {"name": "weather", "args": {"city": "Rome"}}}),
        user({"functionResponse": {"name": "time", "response": {"now": "noon"}}},
             {"functionResponse": {"name": "weather", "response": {"output": "sunny"}}},
             {"functionResponse": {"name": "weather", "response": {"error": "no data"}}})]}
    conv = parse_request(body, MODEL)
    calls = conv.messages[1].parts
    results = conv.messages[2].parts
    assert [c.id for c in calls] == ["call_1_0", "call_1_1", "call_1_2"]
    assert [(r.tool_call_id, r.content, r.is_error) for r in results] == [
        ("call_1_1", '{"now":"noon"}', False), ("call_1_0", "sunny", False), ("call_1_2", "no data", True)]
    assert [c.id for c in parse_request(body, MODEL).messages[1].parts] == [c.id for c in calls]  # stable
    req = build_request(conv, mapper(), RequestOptions())
    assert validate_request(orjson.loads(req.body), len(req.body), frozenset(DEFAULT_MODELS)) is None


def test_given_ids_win_and_unmatched_responses_stay_orphans():
    conv = parse_request({"contents": [
        user({"text": "go"}),
        model({"functionCall": {"name": "f", "args": {}, "id": "x1"}}),
        user({"functionResponse": {"name": "f", "response": {}, "id": "x1"}},
             {"functionResponse": {"name": "g", "response": {}}})]}, MODEL)
    assert [r.tool_call_id for r in conv.messages[2].parts] == ["x1", "response_2_1"]


def test_system_instruction_with_role_user_and_plain_string():
    body = {"systemInstruction": {"role": "user", "parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
            "contents": [user({"text": "hi"})]}
    assert parse_request(body, MODEL).system == "Be brief.\nBe kind."
    assert parse_request({**body, "systemInstruction": "Just this."}, MODEL).system == "Just this."
    assert parse_request({**body, "system_instruction": "snake", "systemInstruction": None}, MODEL).system == "snake"


def test_thought_parts_and_echoed_signatures_restore_the_reasoning():
    sig = encode_signature("I should list the files")
    assert decode_signature(sig) == "I should list the files" and len(sig) % 4 == 0
    assert decode_signature("c2lnLTI=") is None and decode_signature("kgt1zz") is None
    echoed = parse_request({"contents": [
        user({"text": "go"}),
        model({"functionCall": {"name": "ls", "args": {}, "id": "t1"}, "thoughtSignature": sig}),
        user({"functionResponse": {"name": "ls", "id": "t1", "response": {"output": "a.txt"}}})]}, MODEL)
    assert echoed.messages[1].parts[0] == ThinkingPart("I should list the files", sig)
    assert isinstance(echoed.messages[1].parts[1], ToolCallPart)
    kept = parse_request({"contents": [
        user({"text": "go"}), model({"text": "visible thought", "thought": True}, {"text": "answer", "thoughtSignature": sig}),
        user({"text": "more"})]}, MODEL)
    assert kept.messages[1].parts == [ThinkingPart("visible thought", None), TextPart("answer")]
    body = orjson.loads(build_request(echoed, mapper(), RequestOptions()).body)
    assert body["conversationState"]["history"][-1]["assistantResponseMessage"]["content"] == \
        "<thinking>I should list the files</thinking>"


def test_inline_images_and_text_files():
    conv = parse_request({"contents": [user({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                                            {"inline_data": {"mime_type": "text/plain", "data": "aGVsbG8="}})]}, MODEL)
    assert conv.messages[0].parts == [ImagePart("image/png", "iVBORw0KGgo="), TextPart("hello")]


def test_generation_config_tool_config_and_thinking():
    conv = parse_request({"contents": [user({"text": "x"})], "tools": [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}],
                          "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["b"]}},
                          "generationConfig": {"maxOutputTokens": 77, "temperature": 0.2, "stopSequences": ["END"],
                                               "thinkingConfig": {"thinkingBudget": 3000},
                                               "responseMimeType": "application/json",
                                               "responseSchema": {"type": "ARRAY", "items": {"type": "STRING"}}}},
                         "models/gemini-2.5-flash", stream=True)
    assert conv.model == "gemini-2.5-flash" and conv.stream
    assert (conv.max_tokens, conv.stop_sequences) == (77, ["END"])
    assert conv.tool_choice.mode == "tool" and conv.tool_choice.name == "b"
    assert conv.thinking.mode == "enabled" and conv.thinking.budget == 3000 and not conv.include_thoughts
    assert conv.json_mode and conv.json_schema == {"type": "array", "items": {"type": "string"}}
    none = parse_request({"contents": [user({"text": "x"})], "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
                          "generationConfig": {"thinkingConfig": {"thinkingBudget": 0, "includeThoughts": True}}}, MODEL)
    assert none.tool_choice.mode == "none" and none.thinking.mode == "off" and not none.include_thoughts


@pytest.mark.parametrize("body,where", [
    ({}, "contents"),
    ({"contents": [{"role": "bot", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ({"contents": [user({"text": 5})]}, "contents[0].parts[0].text"),
    ({"contents": [user({"fileData": {"fileUri": "gs://x"}})]}, "contents[0].parts[0].fileData"),
    ({"contents": [user({"inlineData": {"mimeType": "application/pdf", "data": "AA=="}})]},
     "contents[0].parts[0].inlineData.mimeType"),
    ({"contents": [user({})]}, "contents[0].parts[0]"),
    ({"contents": [model({"functionCall": {"args": {}}})]}, "contents[0].parts[0].functionCall.name"),
    ({"contents": [user({"text": "x"})], "generationConfig": {"maxOutputTokens": 0}}, "generationConfig.maxOutputTokens"),
    ({"contents": [user({"text": "x"})], "generationConfig": {"thinkingConfig": {"thinkingLevel": "HUGE"}}},
     "generationConfig.thinkingConfig.thinkingLevel"),
    ({"contents": [user({"text": "x"})], "tools": [{"functionDeclarations": [{"name": "a", "parameters": []}]}]},
     "tools[0].functionDeclarations[0].parameters"),
    ({"contents": [user({"text": "x"})], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
     "toolConfig.functionCallingConfig.mode"),
])
def test_invalid_bodies_name_the_field(body, where):
    with pytest.raises(GatewayError) as e:
        parse_request(body, MODEL)
    assert e.value.kind == "invalid_request" and f"'{where}'" in e.value.message


def test_count_tokens_accepts_both_body_forms():
    plain = count_tokens({"contents": [user({"text": "hello there, how are you?"})]}, MODEL)
    wrapped = count_tokens({"generateContentRequest": {"model": "models/x", "contents": [
        user({"text": "hello there, how are you?"})]}}, MODEL)
    assert plain["totalTokens"] == wrapped["totalTokens"] > 4


# -- rendering ----------------------------------------------------------------------------------


def test_whole_response_parts_signature_and_usage():
    conv = parse_request({"contents": [user({"text": "x"})],
                          "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}, MODEL)
    events = [ThinkingDelta("hmm "), ThinkingDelta("ok"), ThinkingEnd("ignored"), TextDelta("Let "), TextDelta("me."),
              ToolCallStart("t1", "ls"), ToolCallDelta("t1", '{"dir'), ToolCallDelta("t1", '_path": "."}'),
              ToolCallEnd("t1"), Usage(100, 20), Stop("tool_use")]
    out = whole_response(conv, events, 50)
    parts = out["candidates"][0]["content"]["parts"]
    sig = encode_signature("hmm ok")
    assert parts == [{"text": "hmm ok", "thought": True}, {"text": "Let me.", "thoughtSignature": sig},
                     {"functionCall": {"name": "ls", "args": {"dir_path": "."}, "id": "t1"}}]
    assert out["candidates"][0]["finishReason"] == "STOP" and out["modelVersion"] == MODEL
    usage = out["usageMetadata"]
    assert usage["promptTokenCount"] == 100 and usage["thoughtsTokenCount"] == 2
    assert usage["candidatesTokenCount"] == 18 and usage["totalTokenCount"] == 120
    hidden = whole_response(parse_request({"contents": [user({"text": "x"})]}, MODEL), events, 50)
    assert [list(p) for p in hidden["candidates"][0]["content"]["parts"]] == [["text", "thoughtSignature"], ["functionCall"]]
    assert whole_response(conv, [TextDelta("x"), Stop("max_tokens")], 5)["candidates"][0]["finishReason"] == "MAX_TOKENS"


# -- no body makes the gateway answer 5xx -------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8) | hostile.leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["text", "role", "parts", "name", "args", "id", "response", "thought", "thoughtSignature",
                         "inlineData", "mimeType", "data", "type", "properties", "mode", "functionCall"]),
        inner, max_size=3),
    max_leaves=12)
part = st.fixed_dictionaries({}, optional={
    "text": json_values, "thought": json_values, "thoughtSignature": st.one_of(json_values, st.just("kgt1zz")),
    "inlineData": st.one_of(json_values, st.fixed_dictionaries({"mimeType": st.sampled_from(
        ["image/png", "text/plain", "audio/mp3", 3]), "data": st.one_of(st.text(max_size=8), json_values)})),
    "functionCall": st.one_of(json_values, st.fixed_dictionaries({"name": json_values, "args": json_values},
                                                                 optional={"id": json_values})),
    "functionResponse": st.one_of(json_values, st.fixed_dictionaries(
        {"name": json_values, "response": json_values}, optional={"id": json_values, "parts": json_values})),
    "fileData": json_values})
content = st.fixed_dictionaries({"role": st.sampled_from(["user", "model", "function", "bogus", None])},
                                optional={"parts": st.one_of(st.lists(part, max_size=3), json_values)})
bodies = st.fixed_dictionaries(
    {"contents": st.one_of(st.lists(content, max_size=4), json_values)},
    optional={"systemInstruction": json_values, "generationConfig": st.one_of(json_values, st.fixed_dictionaries(
        {}, optional={"maxOutputTokens": json_values, "temperature": json_values, "stopSequences": json_values,
                      "responseMimeType": st.sampled_from(["application/json", "text/plain", 1]),
                      "responseSchema": json_values, "responseJsonSchema": json_values, "candidateCount": json_values,
                      "thinkingConfig": json_values})),
              "tools": st.one_of(json_values, st.lists(st.fixed_dictionaries(
                  {"functionDeclarations": st.one_of(json_values, st.lists(json_values, max_size=2))}), max_size=2)),
              "toolConfig": json_values})
targets = st.sampled_from([f"/v1beta/models/{MODEL}:generateContent", f"/v1/models/{MODEL}:countTokens",
                           f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", "/v1beta/models/gpt-4o:generateContent",
                           f"/v1beta/models/{MODEL}:streamGenerateContent", f"/v1beta/models/{MODEL}:embedContent",
                           "/v1beta/models/:generateContent"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=bodies, target=targets)
def test_no_body_makes_the_gateway_answer_5xx(gateway, http, body, target):
    r = http.post(gateway.base_url + target, content=hostile.expand(orjson.dumps(body)),
                  headers={"x-goog-api-key": gateway.api_key, "content-type": "application/json"})
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        err = r.json()["error"]
        assert err["code"] == r.status_code and err["status"] and err["message"]
    elif "stream" in target:
        assert "error" not in r.text[:20]
