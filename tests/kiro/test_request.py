"""Conversation → Kiro body: normalisation, checked against the strict fake's validator."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_gateway.core.conversation import (
    Conversation,
    GatewayError,
    ImagePart,
    Message,
    TextPart,
    Thinking,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from kiro_gateway.fake.state import DEFAULT_MODELS
from kiro_gateway.fake.validation import validate_request
from kiro_gateway.kiro.models import ModelMapper
from kiro_gateway.kiro.request import RequestOptions, build_request

MAPPER = ModelMapper()
KNOWN = frozenset(DEFAULT_MODELS)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII="


def build(conv: Conversation, limit: int = 600_000):
    req = build_request(conv, MAPPER, RequestOptions(limit))
    return req, orjson.loads(req.body)


def verdict(req) -> tuple[str, str] | None:
    return validate_request(orjson.loads(req.body), len(req.body), KNOWN)


def conv(*messages: Message, **kw) -> Conversation:
    return Conversation(model=kw.pop("model", "claude-sonnet-4-5"), messages=list(messages), **kw)


def U(*parts) -> Message:
    return Message("user", [TextPart(p) if isinstance(p, str) else p for p in parts])


def A(*parts) -> Message:
    return Message("assistant", [TextPart(p) if isinstance(p, str) else p for p in parts])


TOOL = Tool("read", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}})


def test_simple_turn_shape():
    req, body = build(conv(U("hello"), system="be brief"))
    state = body["conversationState"]
    assert state["chatTriggerType"] == "MANUAL" and state["conversationId"]
    assert state["history"][0]["userInputMessage"]["content"] == "be brief"
    assert state["history"][1]["assistantResponseMessage"]["content"] == "I will follow these instructions."
    cur = state["currentMessage"]["userInputMessage"]
    assert cur == {"userInputMessageContext": {}, "content": "hello", "modelId": "claude-sonnet-4.5",
                   "origin": "AI_EDITOR"}
    assert verdict(req) is None


def test_same_role_turns_merge_and_history_alternates():
    req, body = build(conv(U("a"), U("b"), A("c"), A("d"), U("e")))
    hist = body["conversationState"]["history"]
    assert [next(iter(h)) for h in hist] == ["userInputMessage", "assistantResponseMessage"]
    assert hist[0]["userInputMessage"]["content"] == "a\nb"
    assert hist[1]["assistantResponseMessage"]["content"] == "c\n\nd"
    assert verdict(req) is None


def test_leading_assistant_and_trailing_prefill():
    req, body = build(conv(A("I start"), U("q"), A("prefill")))
    state = body["conversationState"]
    assert next(iter(state["history"][0])) == "userInputMessage"
    assert state["history"][-1]["assistantResponseMessage"]["content"] == "prefill"
    assert state["currentMessage"]["userInputMessage"]["content"] == "Continue"
    assert verdict(req) is None


def test_orphan_result_becomes_text_and_missing_result_is_synthesised():
    req, body = build(conv(
        U("go"),
        A(ToolCallPart("t1", "read", {"path": "a"}), ToolCallPart("t2", "read", {"path": "b"})),
        U(ToolResultPart("t1", "content of a"), ToolResultPart("ghost", "who am I")),
        tools=[TOOL]))
    cur = body["conversationState"]["currentMessage"]["userInputMessage"]
    results = cur["userInputMessageContext"]["toolResults"]
    assert {r["toolUseId"]: r["status"] for r in results} == {"t1": "success", "t2": "error"}
    assert "[Tool result for call ghost]\nwho am I" in cur["content"]
    assert verdict(req) is None


def test_duplicate_tool_use_ids_are_dropped():
    req, body = build(conv(
        U("go"), A(ToolCallPart("t1", "read", {})), U(ToolResultPart("t1", "x")),
        A(ToolCallPart("t1", "read", {})), U(ToolResultPart("t1", "again")), tools=[TOOL]))
    assert verdict(req) is None
    hist = body["conversationState"]["history"]
    ids = [u["toolUseId"] for h in hist for u in h.get("assistantResponseMessage", {}).get("toolUses", [])]
    assert ids == ["t1"]


def test_history_tools_get_placeholder_definitions():
    req, body = build(conv(U("go"), A(ToolCallPart("t1", "old_tool", {"x": 1})),
                           U(ToolResultPart("t1", "done")), U("next")))
    tools = body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
    assert [t["toolSpecification"]["name"] for t in tools] == ["old_tool"]
    assert verdict(req) is None


def test_long_tool_name_shortened_reversibly_and_long_description_moved():
    name = "mcp__server__" + "x" * 80
    long_desc = "Very detailed. " * 1000
    req, body = build(conv(U("go"), A(ToolCallPart("t1", name, {})), U(ToolResultPart("t1", "ok")),
                           tools=[Tool(name, long_desc, {"type": "object", "properties": {}})]))
    spec = body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"][0]
    short = spec["toolSpecification"]["name"]
    assert len(short) <= 64 and req.tool_names.to_client(short) == name
    assert len(spec["toolSpecification"]["description"]) <= 10000
    assert long_desc.strip() in body["conversationState"]["history"][0]["userInputMessage"]["content"]
    hist_use = body["conversationState"]["history"][-1]["assistantResponseMessage"]["toolUses"][0]
    assert hist_use["name"] == short
    assert verdict(req) is None


def test_images_in_kiro_format_and_unsupported_types_noted():
    req, body = build(conv(U(ImagePart("image/png", PNG), ImagePart("image/bmp", PNG), "look")))
    cur = body["conversationState"]["currentMessage"]["userInputMessage"]
    assert cur["images"] == [{"format": "png", "source": {"bytes": PNG}}]
    assert "image/bmp was omitted" in cur["content"]
    assert verdict(req) is None


def test_thinking_prefix_and_history_thinking():
    c = conv(U("q"), A(ThinkingPart("pondering", "sig"), "answer"), U("more"),
             thinking=Thinking("enabled", 50000))
    req, body = build(c)
    hist = body["conversationState"]["history"]
    assert hist[0]["userInputMessage"]["content"] == (
        "<thinking_mode>enabled</thinking_mode><max_thinking_length>24576</max_thinking_length>")
    assert hist[-1]["assistantResponseMessage"]["content"] == "<thinking>pondering</thinking>\n\nanswer"
    assert req.thinking and verdict(req) is None


def test_tool_choice_becomes_an_instruction():
    req, body = build(conv(U("q"), tools=[TOOL], tool_choice=ToolChoice("tool", "read")))
    assert "calling the tool `read`" in body["conversationState"]["currentMessage"]["userInputMessage"]["content"]


def test_conversation_id_from_session():
    sid = "8c4a3e0e-6a57-4d83-9d39-1f1c1d6a2b10"
    _, body = build(conv(U("q"), session_id=sid))
    assert body["conversationState"]["conversationId"] == sid
    _, again = build(conv(U("q"), session_id="not-a-uuid"))
    _, same = build(conv(U("r"), session_id="not-a-uuid"))
    assert again["conversationState"]["conversationId"] == same["conversationState"]["conversationId"]


def test_size_guard_drops_oldest_turns_then_refuses():
    big = "x" * 50_000
    msgs = []
    for i in range(12):
        msgs += [U(f"q{i} {big}"), A(ToolCallPart(f"t{i}", "read", {})), U(ToolResultPart(f"t{i}", big))]
        msgs.append(A(f"a{i}"))
    msgs.append(U("final question"))
    req, body = build(conv(*msgs, tools=[TOOL]), limit=300_000)
    assert len(req.body) <= 300_000 and req.dropped_turns > 0
    assert verdict(req) is None
    with pytest.raises(GatewayError) as e:
        build(conv(U("y" * 400_000)), limit=300_000)
    assert e.value.kind == "invalid_request" and "too long" in e.value.message


# ---------------------------------------------------------------------------------------------
# Property: whatever shape of conversation a client sends, Kiro's rules hold.

ids = st.sampled_from(["t1", "t2", "t3", "t4", "dup"])
names = st.sampled_from(["read", "write", "x" * 70, "mcp__" + "y" * 66])
text = st.text(min_size=0, max_size=30)
parts = st.one_of(
    text.map(TextPart),
    st.builds(ImagePart, st.sampled_from(["image/png", "image/jpeg", "image/tiff"]), st.just(PNG)),
    st.builds(ToolCallPart, ids, names,
              st.dictionaries(st.sampled_from(["a", "", "b"]), st.integers(-(2**63), 2**63 - 1), max_size=2)),
    st.builds(ToolResultPart, ids, text, st.booleans()),
    st.builds(ThinkingPart, text, st.none(), st.booleans()),
)
messages = st.lists(st.builds(Message, st.sampled_from(["user", "assistant"]), st.lists(parts, max_size=4)),
                    min_size=1, max_size=10)
tools = st.lists(st.builds(Tool, names, st.sampled_from(["", "  ", "desc", "d" * 10_050]),
                           st.sampled_from([{}, {"type": "object"}, {"properties": []}, {"type": "string"}])),
                 max_size=3)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, tools, st.sampled_from(["", "sys"]), st.sampled_from(["off", "enabled", "adaptive"]))
def test_any_conversation_yields_a_request_kiro_accepts(msgs, tool_list, system, thinking):
    c = Conversation(model="claude-opus-4-8", messages=msgs, system=system, tools=tool_list,
                     thinking=Thinking(thinking, 2000))
    req = build_request(c, MAPPER, RequestOptions())
    assert verdict(req) is None, orjson.loads(req.body)


def test_profile_arn_is_spliced_per_credential():
    req, body = build(conv(U("hi")))
    assert "profileArn" not in body and req.with_profile(None) is req.body
    arn = "arn:aws:codewhisperer:us-east-1:123456789012:profile/ABCDEF"
    spliced = orjson.loads(req.with_profile(arn))
    assert spliced == {**body, "profileArn": arn}
    assert validate_request(spliced, len(req.with_profile(arn)), KNOWN) is None
    # Failing over between credentials re-splices from the kept copy, whatever came before.
    other = arn.replace("ABCDEF", "GHIJKL")
    assert req.with_profile(arn) is req.with_profile(arn)  # the same account again: no new copy
    for a in (other, None, arn, "", other):
        assert orjson.loads(req.with_profile(a)) == ({**body, "profileArn": a} if a else body)
        assert orjson.loads(req.body) == body and req.size == len(req.body)
    req.release()
    with pytest.raises(RuntimeError):
        req.with_profile(arn)


def test_a_tool_call_left_without_result_explains_itself():
    req, body = build(conv(U("write it"), A(ToolCallPart("t1", "Write", {})), U("go on"), tools=[TOOL]))
    result = body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]
    assert result["status"] == "error" and "smaller pieces" in result["content"][0]["text"]
    assert verdict(req) is None


def test_a_call_kiro_cut_off_keeps_a_note_and_its_result_says_what_to_do():
    from kiro_gateway.dialects.anthropic import parse_request as anthropic_parse
    from kiro_gateway.dialects.openai_chat import parse_request as chat_parse
    from kiro_gateway.kiro.request import CUT_CALL

    # Claude Code records unparseable arguments as {"__unparsedToolInput": {"raw": first 2 KB, "len": n}}
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "tools": [{"name": "Write", "input_schema": {}}],
            "messages": [{"role": "user", "content": "go"},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Write",
                                                            "input": {"__unparsedToolInput": {"raw": '{"a', "len": 9000}}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": True,
                                                       "content": "InputValidationError"}]}]}
    call = anthropic_parse(body).messages[1].parts[0]
    assert call.cut and call.arguments == {"cut_off": "the arguments were cut off after 9000 characters; "
                                                      "the call was not run"}
    req, kiro = build(anthropic_parse(body))
    assert verdict(req) is None
    assert kiro["conversationState"]["history"][-1]["assistantResponseMessage"]["toolUses"][0]["input"] == call.arguments
    result = kiro["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]
    assert result["status"] == "error" and result["content"][0]["text"] == "InputValidationError\n\n" + CUT_CALL
    # OpenAI clients send the broken arguments string back; an unanswered cut call gets the same advice.
    chat = chat_parse({"model": "claude-sonnet-4-6", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "Write", "arguments": '{"content": "abc'}}]},
        {"role": "user", "content": "well?"}]})
    assert chat.messages[1].parts[0].cut
    req, kiro = build(chat)
    assert verdict(req) is None
    results = kiro["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results == [{"toolUseId": "c1", "content": [{"text": CUT_CALL}], "status": "error"}]
    # a whole call is not marked
    assert not chat_parse({"model": "m", "messages": [
        {"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}).messages[1].parts[0].cut


@given(st.text())
def test_the_cli_origin_swap_touches_only_origin_fields(text):
    from kiro_gateway.kiro.client import as_cli_body

    sneaky = text + '"origin":"AI_EDITOR"' + text
    body = orjson.dumps({"conversationState": {"currentMessage": {"userInputMessage": {
        "content": sneaky, "origin": "AI_EDITOR"}}, "history": [{"userInputMessage": {
            "content": sneaky, "origin": "AI_EDITOR"}}]}})
    out = orjson.loads(as_cli_body(body))["conversationState"]
    assert out["currentMessage"]["userInputMessage"] == {"content": sneaky, "origin": "KIRO_CLI"}
    assert out["history"][0]["userInputMessage"] == {"content": sneaky, "origin": "KIRO_CLI"}
