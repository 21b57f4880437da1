"""The official openai SDK → gateway → strict fake Kiro, all over real sockets."""

from __future__ import annotations

import base64
import json

import httpx
import openai
import pytest

MODEL = "claude-sonnet-4-6"
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
CHAT_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
RESP_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather for a city.",
             "strict": False, "parameters": CHAT_TOOL["function"]["parameters"]}
WEATHER_CALL = {"tool": {"name": "get_weather", "input": {"city": "Paris"}, "fragments": 4}}


@pytest.fixture
def oai(gateway):
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=gateway.api_key, max_retries=0)


@pytest.fixture(scope="module")
def no_retry(fake, tmp_path_factory):
    """A client of a gateway that does not retry Kiro's errors, so each one surfaces at once."""
    from support import own_account, start_gateway

    gw = start_gateway(fake, tmp_path_factory.mktemp("no_retry"), own_account(fake), max_attempts=1)
    yield openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0)
    gw.server.stop()


def kiro_requests(fake) -> list[dict]:
    return [r for r in fake.requests if r["path"] == "/generateAssistantResponse"]


def assert_all_accepted(fake, count: int) -> None:
    reqs = kiro_requests(fake)
    assert len(reqs) == count, [r["rule"] for r in reqs]
    assert all(r["rule"] is None and r["status"] == 200 for r in reqs), [(r["rule"], r["status"]) for r in reqs]


def current(fake) -> dict:
    return kiro_requests(fake)[-1]["body"]["conversationState"]["currentMessage"]["userInputMessage"]


def image_message(text: str) -> dict:
    return {"role": "user", "content": [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}


def test_chat_non_stream_with_tools_and_image(oai, clean_fake):
    clean_fake.add_script({"steps": [{"text": "Let me check."}, WEATHER_CALL]})
    r = oai.chat.completions.create(model=MODEL, max_completion_tokens=300, tools=[CHAT_TOOL],
                                    messages=[{"role": "system", "content": "Be brief."},
                                              image_message("Weather in Paris?")])
    choice = r.choices[0]
    assert r.object == "chat.completion" and choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("tooluse_")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    cur = current(clean_fake)
    assert cur["images"] == [{"format": "png", "source": {"bytes": PNG}}]
    assert cur["content"] == "Weather in Paris?" and cur["modelId"] == "claude-sonnet-4.6"
    assert cur["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"] == "get_weather"
    assert_all_accepted(clean_fake, 1)


def test_chat_stream_with_tools_image_and_usage(oai, clean_fake):
    clean_fake.add_script({"steps": [{"text": "Checking the weather now.", "chunks": 3}, WEATHER_CALL]})
    stream = oai.chat.completions.create(model=MODEL, stream=True, stream_options={"include_usage": True},
                                         tools=[CHAT_TOOL], messages=[image_message("Weather in Paris?")])
    text, args, finish, usage, ids = [], [], None, None, set()
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
            assert chunk.choices == []
            continue
        choice = chunk.choices[0]
        text.append(choice.delta.content or "")
        for tc in choice.delta.tool_calls or []:
            assert tc.index == 0
            if tc.id:
                ids.add(tc.id)
                assert tc.function.name == "get_weather"
            args.append(tc.function.arguments or "")
        finish = choice.finish_reason or finish
    assert "".join(text) == "Checking the weather now."
    assert len(ids) == 1 and len([a for a in args if a]) == 4
    assert json.loads("".join(args)) == {"city": "Paris"}
    assert finish == "tool_calls"
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert current(clean_fake)["images"][0]["format"] == "png"
    assert_all_accepted(clean_fake, 1)


def test_chat_tool_round_trip(oai, clean_fake):
    clean_fake.add_script({"match": "weather in Paris", "times": 1, "steps": [WEATHER_CALL]})
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = oai.chat.completions.create(model=MODEL, tools=[CHAT_TOOL], messages=messages)
    call = first.choices[0].message.tool_calls[0]
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"}]
    second = oai.chat.completions.create(model=MODEL, tools=[CHAT_TOOL], messages=messages)
    assert second.choices[0].finish_reason == "stop"
    assert "Sunny, 21 C" in second.choices[0].message.content
    state = kiro_requests(clean_fake)[-1]["body"]["conversationState"]
    results = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results == [{"toolUseId": call.id, "content": [{"text": "Sunny, 21 C"}], "status": "success"}]
    assert state["history"][-1]["assistantResponseMessage"]["toolUses"][0] == {
        "toolUseId": call.id, "name": "get_weather", "input": {"city": "Paris"}}
    assert_all_accepted(clean_fake, 2)


def test_chat_reasoning_effort_streams_reasoning_content(oai, clean_fake):
    # A newline before </thinking>, as the model writes it (a "." right before the tag reads as quoted).
    clean_fake.add_script({"steps": [{"thinking": "Weighing the options."}, {"text": "Answer."}]})
    stream = oai.chat.completions.create(model=MODEL, stream=True, reasoning_effort="high",
                                         messages=[{"role": "user", "content": "think"}])
    reasoning, text = [], []
    for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning.append(getattr(delta, "reasoning_content", None) or "")
        text.append(delta.content or "")
    assert "".join(reasoning) == "Weighing the options." and "".join(text) == "Answer."
    head = kiro_requests(clean_fake)[-1]["body"]["conversationState"]["history"][0]["userInputMessage"]["content"]
    assert head.startswith("<thinking_mode>adaptive</thinking_mode><thinking_effort>high</thinking_effort>")


def test_chat_json_mode_returns_bare_json(oai, clean_fake):
    clean_fake.add_script({"steps": [{"text": 'Here:\n```json\n{"ok": true}\n```'}]})
    r = oai.chat.completions.create(model=MODEL, response_format={"type": "json_object"},
                                    messages=[{"role": "user", "content": "json please"}])
    assert json.loads(r.choices[0].message.content) == {"ok": True}


def test_responses_stream_with_function_call_round_trip(oai, clean_fake):
    clean_fake.add_script({"match": "weather in Paris", "times": 1, "steps": [{"text": "Checking."}, WEATHER_CALL]})
    with oai.responses.stream(model=MODEL, input="What is the weather in Paris?", tools=[RESP_TOOL],
                              store=False) as s:
        types = [ev.type for ev in s]
        first = s.get_final_response()
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert types.count("response.function_call_arguments.delta") == 4
    assert [o.type for o in first.output] == ["message", "function_call"]
    assert first.output_text == "Checking."
    call = first.output[1]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert first.usage.input_tokens > 0 and first.usage.total_tokens == first.usage.input_tokens + first.usage.output_tokens
    # store: false — the client sends the whole history back, with the call's output.
    history = [{"role": "user", "content": "What is the weather in Paris?"},
               *[o.model_dump(exclude_none=True) for o in first.output],
               {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}]
    with oai.responses.stream(model=MODEL, input=history, tools=[RESP_TOOL], store=False) as s:
        second = s.get_final_response()
    assert second.status == "completed" and "Sunny, 21 C" in second.output_text
    state = kiro_requests(clean_fake)[-1]["body"]["conversationState"]
    results = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["toolUseId"] == call.call_id and results[0]["content"] == [{"text": "Sunny, 21 C"}]
    assert state["history"][-1]["assistantResponseMessage"]["toolUses"][0]["name"] == "get_weather"
    assert_all_accepted(clean_fake, 2)


def test_responses_previous_response_id(oai, clean_fake):
    first = oai.responses.create(model=MODEL, instructions="Be brief.", input="My name is Ada.", tools=[RESP_TOOL])
    assert first.status == "completed" and first.output_text.startswith("Hello from fake Kiro.")
    assert first.instructions == "Be brief." and first.tools[0].name == "get_weather"
    assert oai.responses.retrieve(first.id).model_dump() == first.model_dump()  # echo and all
    second = oai.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    history = kiro_requests(clean_fake)[-1]["body"]["conversationState"]["history"]
    contents = [h.get("userInputMessage", h.get("assistantResponseMessage"))["content"] for h in history]
    assert any("My name is Ada." in c for c in contents) and first.output_text in contents
    count = oai.responses.input_tokens.count(model=MODEL, input="hello " * 200, previous_response_id=first.id)
    assert count.object == "response.input_tokens" and 200 < count.input_tokens < 400
    with pytest.raises(openai.BadRequestError) as e:
        oai.responses.create(model=MODEL, input="x", previous_response_id="resp_unknown")
    assert e.value.body["code"] == "previous_response_not_found" and e.value.body["param"] == "previous_response_id"
    assert_all_accepted(clean_fake, 2)


def test_bad_key_is_authentication_error(gateway):
    bad = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad.responses.create(model=MODEL, input="x")
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_malformed_is_bad_request(oai, gateway, clean_fake):
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model=MODEL, messages=[{"role": "robot", "content": "x"}])
    assert e.value.body["type"] == "invalid_request_error" and e.value.body["param"] == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert "data URL" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        oai.responses.create(model=MODEL, input=[{"type": "message", "role": "user", "content": 5}])
    assert e.value.body["param"] == "input[0].content"
    r = httpx.post(gateway.base_url + "/v1/responses", content=b"{nope",
                   headers={"authorization": f"Bearer {gateway.api_key}"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert not kiro_requests(clean_fake)


@pytest.mark.parametrize("status,body,exc", [
    (429, {"message": "Too many requests"}, openai.RateLimitError),
    (503, {"message": "MODEL_TEMPORARILY_UNAVAILABLE"}, openai.InternalServerError),
    (400, {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}, openai.BadRequestError),
])
def test_upstream_errors(no_retry, clean_fake, status, body, exc):
    clean_fake.add_script({"status": status, "body": body})
    with pytest.raises(exc) as e:
        no_retry.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    if status == 400:
        assert e.value.body["code"] == "context_length_exceeded"


def test_failure_mid_stream(oai, clean_fake):
    clean_fake.add_script({"steps": [{"text": "partial answer"}, {"drop": True}]})
    with pytest.raises(openai.APIError) as e:
        for _ in oai.chat.completions.create(model=MODEL, stream=True, messages=[{"role": "user", "content": "x"}]):
            pass
    assert "broke off" in e.value.message
    clean_fake.add_script({"steps": [{"text": "partial answer"}, {"drop": True}]})
    with oai.responses.stream(model=MODEL, input="x") as s:
        types = [ev.type for ev in s]
    assert types[-1] == "response.failed"


def test_models_list_in_openai_shape(oai, gateway, fake, tmp_path):
    ids = [m.id for m in oai.models.list()]
    assert "claude-opus-4-8" in ids and "claude-sonnet-4-6" in ids
    raw = httpx.get(gateway.base_url + "/v1/models", headers={"authorization": f"Bearer {gateway.api_key}"}).json()
    assert raw["object"] == "list" and set(raw["data"][0]) == {"id", "object", "created", "owned_by",
                                                                  "context_window", "max_output_tokens"}
    # The anthropic SDK's request (Bearer + anthropic-version) still gets Anthropic's shape.
    anth = httpx.get(gateway.base_url + "/v1/models", headers={"authorization": f"Bearer {gateway.api_key}",
                                                              "anthropic-version": "2023-06-01"}).json()
    assert anth["data"][0]["type"] == "model" and "has_more" in anth


def test_model_map_aliases_are_listed_and_usable(fake, clean_fake, tmp_path):
    from support import own_account, start_gateway

    gw = start_gateway(fake, tmp_path, own_account(fake), model_map={"gpt-4o": "claude-sonnet-4.6", "gpt-5*": "auto"})
    try:
        client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0)
        ids = [m.id for m in client.models.list()]
        assert "gpt-4o" in ids and "gpt-5*" not in ids
        r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert r.model == "gpt-4o" and r.choices[0].message.content.startswith("Hello from fake Kiro.")
        assert current(clean_fake)["modelId"] == "claude-sonnet-4.6"
    finally:
        gw.server.stop()
