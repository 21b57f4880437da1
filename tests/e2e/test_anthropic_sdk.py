"""The official anthropic SDK → gateway → strict fake Kiro, all over real sockets."""

from __future__ import annotations

import base64
import json

import anthropic
import httpx
import pytest

MODEL = "claude-sonnet-4-6"
# A 1×1 PNG.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def last_kiro(fake) -> dict:
    reqs = [r for r in fake.requests if r["path"] == "/generateAssistantResponse"]
    assert reqs, "the fake saw no generateAssistantResponse"
    return reqs[-1]


def assert_all_accepted(fake) -> None:
    for r in fake.requests:
        if r["path"] == "/generateAssistantResponse":
            assert r["rule"] is None, f"fake rejected a request: {r['rule']}"


def test_non_stream_text(client, clean_fake):
    msg = client.messages.create(model=MODEL, max_tokens=200,
                                 messages=[{"role": "user", "content": "Say hello to the tests"}])
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].type == "text"
    assert msg.content[0].text == "Hello from fake Kiro. You said: Say hello to the tests"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert msg.usage.cache_read_input_tokens == 0 and msg.usage.cache_creation_input_tokens == 0
    body = last_kiro(clean_fake)["body"]
    cur = body["conversationState"]["currentMessage"]["userInputMessage"]
    assert cur["modelId"] == "claude-sonnet-4.6" and cur["origin"] == "AI_EDITOR"
    assert cur["content"] == "Say hello to the tests"
    assert_all_accepted(clean_fake)


def test_stream_text_events_in_order(client, clean_fake):
    # Paced like a real model, chunks arrive in their own reads and become their own deltas (on a
    # loaded machine two may share a read and one delta: most must still be apart).
    clean_fake.add_script({"chunk_delay": 0.04, "steps": [{"text": "one two three four five six", "chunks": 6},
                                                          {"context_usage": 1.5}]})
    types = []
    with client.messages.stream(model=MODEL, max_tokens=100,
                                messages=[{"role": "user", "content": "count"}]) as s:
        for ev in s:
            types.append(ev.type if ev.type != "content_block_delta" else "delta")
        final = s.get_final_message()
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert types[1] == "content_block_start" and types.count("delta") >= 4
    assert final.content[0].text == "one two three four five six"
    # one input figure per stream: message_start's count of the prompt, not Kiro's later context
    # usage (1.5 % of a 1M window would be ~15,000)
    assert 0 < final.usage.input_tokens < 100


def test_tool_round_trip(client, clean_fake):
    clean_fake.add_script({"match": "weather in Paris", "steps": [
        {"text": "Let me check."},
        {"tool": {"name": "get_weather", "input": {"city": "Paris"}, "fragments": 4}}]})
    first = client.messages.create(model=MODEL, max_tokens=500, tools=[WEATHER_TOOL],
                                   messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    assert first.stop_reason == "tool_use"
    tool = next(b for b in first.content if b.type == "tool_use")
    assert tool.name == "get_weather" and tool.input == {"city": "Paris"}
    second = client.messages.create(model=MODEL, max_tokens=500, tools=[WEATHER_TOOL], messages=[
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id,
                                      "content": "Sunny, 21 C"}]},
    ])
    assert second.stop_reason == "end_turn"
    assert "Sunny, 21 C" in second.content[0].text
    body = last_kiro(clean_fake)["body"]["conversationState"]
    results = body["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results == [{"toolUseId": tool.id, "content": [{"text": "Sunny, 21 C"}], "status": "success"}]
    assert body["history"][-1]["assistantResponseMessage"]["toolUses"][0]["input"] == {"city": "Paris"}
    assert_all_accepted(clean_fake)


def test_streamed_tool_call_fragments(client, clean_fake):
    args = {"path": "/tmp/x.txt", "content": "line\n" * 50}
    clean_fake.add_script({"steps": [{"tool": {"name": "write_file", "input": args, "fragments": 7}}]})
    tool = {"name": "write_file", "description": "Write a file",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"},
                                                              "content": {"type": "string"}}}}
    partials = []
    with client.messages.stream(model=MODEL, max_tokens=500, tools=[tool],
                                messages=[{"role": "user", "content": "write it"}]) as s:
        for ev in s:
            if ev.type == "content_block_delta" and ev.delta.type == "input_json_delta":
                partials.append(ev.delta.partial_json)
        final = s.get_final_message()
    assert len(partials) == 7
    assert json.loads("".join(partials)) == args
    assert final.content[0].input == args and final.stop_reason == "tool_use"


def test_thinking_with_signature_echoed_back(client, clean_fake):
    thinking = {"type": "enabled", "budget_tokens": 4000}
    with client.messages.stream(model="claude-opus-4-8", max_tokens=8000, thinking=thinking,
                                messages=[{"role": "user", "content": "think first"}]) as s:
        deltas = [ev.delta.type for ev in s if ev.type == "content_block_delta"]
        final = s.get_final_message()
    assert "signature_delta" in deltas
    assert deltas.index("thinking_delta") < deltas.index("signature_delta") < deltas.index("text_delta")
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think about this." and final.content[0].signature
    first_body = last_kiro(clean_fake)["body"]["conversationState"]
    head = first_body["history"][0]["userInputMessage"]["content"]
    assert head.startswith("<thinking_mode>enabled</thinking_mode><max_thinking_length>4000</max_thinking_length>")
    # Next turn: the thinking block comes back with its signature and is accepted.
    again = client.messages.create(model="claude-opus-4-8", max_tokens=8000, thinking=thinking, messages=[
        {"role": "user", "content": "think first"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {"role": "user", "content": "and again"},
    ])
    assert again.content[-1].type == "text"
    hist = last_kiro(clean_fake)["body"]["conversationState"]["history"]
    assert hist[-1]["assistantResponseMessage"]["content"].startswith("<thinking>Let me think about this.</thinking>")
    assert_all_accepted(clean_fake)


def test_image_reaches_kiro(client, clean_fake):
    client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "what is this?"}]}])
    cur = last_kiro(clean_fake)["body"]["conversationState"]["currentMessage"]["userInputMessage"]
    assert cur["images"] == [{"format": "png", "source": {"bytes": PNG}}]
    assert cur["content"] == "what is this?"
    assert_all_accepted(clean_fake)


def test_image_url_is_a_clear_400(client, clean_fake):
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}])
    assert "base64" in str(e.value)
    assert not clean_fake.requests


def test_count_tokens(client):
    small = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    big = client.messages.count_tokens(model=MODEL, system="You are terse.", tools=[WEATHER_TOOL],
                                       messages=[{"role": "user", "content": "hello world " * 500}])
    assert 1 <= small.input_tokens < 20
    assert 900 < big.input_tokens < 2000


def test_models(client):
    page = client.models.list()
    ids = [m.id for m in page.data]
    assert "claude-opus-4-8" in ids and "claude-sonnet-4-6" in ids
    assert all(m.type == "model" and m.display_name for m in page.data)


def test_bad_key_is_authentication_error(gateway):
    bad = anthropic.Anthropic(base_url=gateway.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        bad.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "authentication_error"


def test_x_api_key_header_accepted(gateway):
    r = httpx.post(gateway.base_url + "/v1/messages?beta=true", headers={"x-api-key": gateway.api_key},
                   json={"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200 and r.json()["type"] == "message"


def test_malformed_body_is_bad_request(client, gateway):
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "robot", "content": "x"}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "messages.0.role" in e.value.body["error"]["message"]
    r = httpx.post(gateway.base_url + "/v1/messages", content=b"{not json",
                   headers={"authorization": f"Bearer {gateway.api_key}", "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == "error"


def test_head_root_and_health(gateway):
    assert httpx.head(gateway.base_url + "/").status_code == 200
    h = httpx.get(gateway.base_url + "/health")
    assert h.status_code == 200 and h.json()["status"] == "ok"
    nf = httpx.get(gateway.base_url + "/nope")
    assert nf.status_code == 404 and nf.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("status,body,exc,fragment", [
    (429, {"message": "Too many requests"}, anthropic.RateLimitError, "rate limiting"),
    (400, {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"},
     anthropic.BadRequestError, "prompt is too long"),
    (503, {"message": "MODEL_TEMPORARILY_UNAVAILABLE"}, anthropic.InternalServerError, "overloaded"),
    (500, {"message": "boom"}, anthropic.InternalServerError, "Kiro failed"),
])
def test_upstream_errors_map_to_anthropic_errors(client, clean_fake, status, body, exc, fragment):
    # 5xx is retried (3 tries on the one credential), so the failure must persist that long.
    clean_fake.add_script({"status": status, "body": body, "times": 3})
    with pytest.raises(exc) as e:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert fragment in e.value.body["error"]["message"]


def test_failure_mid_stream_is_an_error_event(client, clean_fake):
    clean_fake.add_script({"steps": [{"text": "partial answer"}, {"drop": True}]})
    with pytest.raises(anthropic.APIStatusError) as e:
        with client.messages.stream(model=MODEL, max_tokens=10,
                                    messages=[{"role": "user", "content": "x"}]) as s:
            for _ in s:
                pass
    assert "broke off" in str(e.value)


def test_content_length_exception_is_max_tokens(client, clean_fake):
    clean_fake.add_script({"steps": [{"text": "a long answer"},
                                     {"exception": {"type": "ContentLengthExceededException",
                                                    "message": "too long"}}]})
    msg = client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert msg.stop_reason == "max_tokens" and msg.content[0].text == "a long answer"


def test_long_tool_names_round_trip(client, clean_fake):
    long_name = "mcp__some_server_with_a_long_name__" + "really_long_tool_name_" * 3
    assert len(long_name) > 64
    tool = {"name": long_name, "description": "d", "input_schema": {"type": "object", "properties": {}}}
    client.messages.create(model=MODEL, max_tokens=100, tools=[tool],
                           messages=[{"role": "user", "content": "list tools"}])
    sent = last_kiro(clean_fake)["body"]["conversationState"]["currentMessage"]["userInputMessage"]
    kiro_name = sent["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"]
    assert len(kiro_name) <= 64 and kiro_name != long_name
    clean_fake.add_script({"steps": [{"tool": {"name": kiro_name, "input": {"a": 1}}}]})
    msg = client.messages.create(model=MODEL, max_tokens=100, tools=[tool],
                                 messages=[{"role": "user", "content": "call it"}])
    assert msg.content[0].name == long_name
    assert_all_accepted(clean_fake)


def test_claude_code_shaped_conversation_is_accepted(client, clean_fake):
    """System messages inside `messages`, cache_control everywhere, metadata JSON user_id."""
    sid = "0b5e7a52-3d1e-4a8e-9a57-0d7f6b3c2a11"
    msg = client.messages.create(
        model="claude-opus-4-8", max_tokens=16000,
        system=[{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        metadata={"user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": sid})},
        thinking={"type": "adaptive"}, tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "<system-reminder>be nice</system-reminder>"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                               "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                                          "content": [{"type": "text", "text": "no network"}],
                                          "cache_control": {"type": "ephemeral"}}]},
        ],
        extra_body={"output_config": {"effort": "medium"}, "context_management": {"edits": []}},
    )
    assert msg.content
    body = last_kiro(clean_fake)["body"]["conversationState"]
    assert body["conversationId"] == sid
    assert "<thinking_effort>medium</thinking_effort>" in body["history"][0]["userInputMessage"]["content"]
    results = body["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["status"] == "error"
    assert_all_accepted(clean_fake)


def test_structured_output_returns_bare_json(client, clean_fake):
    """Claude Code's session-title request asks for JSON through output_config.format."""
    clean_fake.add_script({"steps": [{"text": 'Sure! Here it is:\n```json\n{"title": "Fix the build"}\n```\nDone.',
                                      "chunks": 5}]})
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    with client.messages.stream(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "title?"}],
                                extra_body={"output_config": {"format": {"type": "json_schema",
                                                                         "schema": schema}}}) as s:
        final = s.get_final_message()
    assert json.loads(final.content[0].text) == {"title": "Fix the build"}
    system = last_kiro(clean_fake)["body"]["conversationState"]["history"][0]["userInputMessage"]["content"]
    assert "single valid JSON value" in system and '"required":["title"]' in system


def test_pings_during_a_slow_stream(fake, clean_fake, tmp_path):
    from support import own_account, start_gateway

    gw = start_gateway(fake, tmp_path, own_account(fake), ping_interval=0.2)
    try:
        clean_fake.add_script({"steps": [{"text": "before"}, {"delay": 0.7}, {"text": " after"}]})
        with httpx.stream("POST", gw.base_url + "/v1/messages", headers={"x-api-key": gw.api_key},
                          json={"model": MODEL, "max_tokens": 10, "stream": True,
                                "messages": [{"role": "user", "content": "slow"}]}) as r:
            text = "".join(r.iter_text())
        assert text.count("event: ping") >= 2
        assert text.index("before") < text.index("event: ping") < text.index(" after")
        assert text.rstrip().endswith('data: {"type":"message_stop"}')
    finally:
        gw.server.stop()


def test_unknown_model_family_is_a_clear_400(client, clean_fake):
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model="gpt-4o", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert "gpt-4o" in e.value.body["error"]["message"]
    assert not [r for r in clean_fake.requests if r["path"] == "/generateAssistantResponse"]


def test_unknown_routes_answer_in_the_callers_dialect(gateway):
    gem = httpx.post(gateway.base_url + "/v1beta/nothing", headers={"x-goog-api-key": gateway.api_key})
    assert gem.status_code == 404 and gem.json()["error"]["status"] == "NOT_FOUND"
    oai = httpx.get(gateway.base_url + "/v1/chat/completions/x", headers={"authorization": "Bearer k"})
    assert oai.status_code == 404 and "type" in oai.json()["error"] and "code" in oai.json()["error"]
    ant = httpx.get(gateway.base_url + "/v1/nope")
    assert ant.status_code == 404 and ant.json()["type"] == "error"


def test_silent_upstream_is_abandoned_after_read_timeout(fake, clean_fake, tmp_path):
    from support import own_account, start_gateway

    gw = start_gateway(fake, tmp_path, own_account(fake), ping_interval=0.2, read_timeout=0.6)
    try:
        clean_fake.add_script({"steps": [{"text": "start"}, {"delay": 3.0}, {"text": " never seen"}]})
        with httpx.stream("POST", gw.base_url + "/v1/messages", headers={"x-api-key": gw.api_key},
                          json={"model": MODEL, "max_tokens": 10, "stream": True,
                                "messages": [{"role": "user", "content": "stall"}]}, timeout=10) as r:
            text = "".join(r.iter_text())
        assert text.count("event: ping") >= 2
        assert "event: error" in text and "sent nothing" in text and "never seen" not in text
    finally:
        gw.server.stop()
