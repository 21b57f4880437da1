"""The official google-genai SDK → gateway → strict fake Kiro, all over real sockets.

google-genai calls /v1 by default and /v1beta with api_version="v1beta"; both run.
base_url points at the gateway, so the SDK never reaches Google.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from google import genai
from google.genai import errors, types

MODEL = "gemini-2.5-pro"
VERSIONS = ["v1", "v1beta"]
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city.",
    parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]))


_clients: list[genai.Client] = []  # a collected Client closes its HTTP client under `.models`


def make_client(gateway, version: str = "v1beta", key: str | None = None) -> genai.Client:
    client = genai.Client(vertexai=False, api_key=key or gateway.api_key,
                          http_options=types.HttpOptions(base_url=gateway.base_url, api_version=version))
    _clients.append(client)
    return client


def kiro_requests(fake) -> list[dict]:
    return [r for r in fake.requests if r["path"] == "/generateAssistantResponse"]


def last_kiro(fake) -> dict:
    reqs = kiro_requests(fake)
    assert reqs, "the fake saw no generateAssistantResponse"
    assert all(r["rule"] is None and r["status"] == 200 for r in reqs), [(r["rule"], r["status"]) for r in reqs]
    return reqs[-1]["body"]["conversationState"]


@pytest.mark.parametrize("version", VERSIONS)
def test_generate(gateway, clean_fake, version):
    r = make_client(gateway, version).models.generate_content(
        model=MODEL, contents="Say hello to the tests",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=100, temperature=0.1))
    assert r.text == "Hello from fake Kiro. You said: Say hello to the tests"
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.model_version == MODEL and r.response_id
    u = r.usage_metadata
    assert u.prompt_token_count > 0 and u.candidates_token_count > 0
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count
    state = last_kiro(clean_fake)
    cur = state["currentMessage"]["userInputMessage"]
    assert cur["modelId"] == "claude-sonnet-4.6" and cur["content"] == "Say hello to the tests"
    assert state["history"][0]["userInputMessage"]["content"] == "Be brief."


@pytest.mark.parametrize("version", VERSIONS)
def test_stream_with_thoughts(gateway, clean_fake, version):
    clean_fake.add_script({"steps": [{"thinking": "Counting slowly", "chunks": 2},
                                     {"text": "one two three four five six", "chunks": 6}]})
    chunks = list(make_client(gateway, version).models.generate_content_stream(
        model="models/gemini-2.5-flash", contents="count",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(
            include_thoughts=True, thinking_budget=2048))))
    parts = [p for c in chunks for p in (c.candidates[0].content.parts or [])]
    assert "".join(p.text for p in parts if p.thought) == "Counting slowly"
    assert "".join(p.text for p in parts if not p.thought) == "one two three four five six"
    signed = [p for p in parts if p.thought_signature]
    assert len(signed) == 1 and not signed[0].thought  # on the first answer part after the thoughts
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.thoughts_token_count > 0
    head = last_kiro(clean_fake)["history"][0]["userInputMessage"]["content"]
    assert head.startswith("<thinking_mode>enabled</thinking_mode><max_thinking_length>2048</max_thinking_length>")


@pytest.mark.parametrize("version", VERSIONS)
def test_function_calling_round_trip(gateway, clean_fake, version):
    client = make_client(gateway, version)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        thinking_config=types.ThinkingConfig(thinking_budget=1024),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    clean_fake.add_script({"match": "weather in Paris", "steps": [
        {"thinking": "Use the weather tool"}, {"tool": {"name": "get_weather", "input": {"city": "Paris"}, "fragments": 4}}]})
    question = types.Content(role="user", parts=[types.Part(text="What is the weather in Paris?")])
    first = client.models.generate_content(model=MODEL, contents=[question], config=config)
    (call,) = first.function_calls
    assert call.name == "get_weather" and call.args == {"city": "Paris"} and call.id
    assert first.candidates[0].content.parts[0].thought_signature  # on the functionCall part
    sent = last_kiro(clean_fake)["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
    assert sent[0]["toolSpecification"]["inputSchema"]["json"] == {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    # The answer goes back without an id (as Part.from_function_response builds it): paired by name.
    answer = types.Content(role="user", parts=[types.Part.from_function_response(
        name="get_weather", response={"output": "Sunny, 21 C"})])
    second = client.models.generate_content(
        model=MODEL, contents=[question, first.candidates[0].content, answer], config=config)
    assert second.text.startswith("Received 1 tool result(s): Sunny, 21 C")
    state = last_kiro(clean_fake)
    results = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results == [{"toolUseId": call.id, "content": [{"text": "Sunny, 21 C"}], "status": "success"}]
    model_turn = state["history"][-1]["assistantResponseMessage"]
    assert model_turn["toolUses"][0]["toolUseId"] == call.id
    # The echoed thought signature brought the reasoning back into Kiro's history.
    assert model_turn["content"] == "<thinking>Use the weather tool</thinking>"


@pytest.mark.parametrize("version", VERSIONS)
def test_count_tokens(gateway, clean_fake, version):
    client = make_client(gateway, version)
    small = client.models.count_tokens(model=MODEL, contents="hi")
    big = client.models.count_tokens(model=MODEL, contents="hello world " * 500)
    assert 1 <= small.total_tokens < 20 and 900 < big.total_tokens < 2000
    assert not kiro_requests(clean_fake)  # counted locally


def test_json_mode_with_response_schema(gateway, clean_fake):
    client = make_client(gateway)
    schema = types.Schema(type="OBJECT", required=["name", "score"], properties={
        "name": types.Schema(type="STRING"), "score": types.Schema(type="INTEGER", minimum=3)})
    r = client.models.generate_content(model=MODEL, contents="rate it", config=types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=schema))
    # The fake answers the gateway's JSON instruction with a minimal instance of the schema.
    assert json.loads(r.text) == {"name": "fake", "score": 3}
    head = last_kiro(clean_fake)["history"][0]["userInputMessage"]["content"]
    assert "single valid JSON value" in head
    assert json.loads(head.split("JSON Schema:\n", 1)[1]) == {  # SDK's snake_case → JSON Schema
        "type": "object", "required": ["name", "score"],
        "properties": {"name": {"type": "string"}, "score": {"type": "integer", "minimum": 3}}}


def test_json_mode_strips_what_the_model_wraps_around_json(gateway, clean_fake):
    clean_fake.add_script({"steps": [{"text": 'Sure!\n```json\n{"title": "Fix the build"}\n```\nDone.', "chunks": 5}]})
    chunks = list(make_client(gateway, "v1").models.generate_content_stream(
        model=MODEL, contents="title?", config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema={"type": "object", "properties": {"title": {"type": "string"}}})))
    assert json.loads("".join(c.text or "" for c in chunks)) == {"title": "Fix the build"}
    last_kiro(clean_fake)


def test_image_reaches_kiro(gateway, clean_fake):
    make_client(gateway).models.generate_content(model=MODEL, contents=[
        types.Part.from_bytes(data=base64.b64decode(PNG), mime_type="image/png"), "what is this?"])
    cur = last_kiro(clean_fake)["currentMessage"]["userInputMessage"]
    assert cur["images"] == [{"format": "png", "source": {"bytes": PNG}}] and cur["content"] == "what is this?"


@pytest.mark.parametrize("version", VERSIONS)
def test_models_list_and_get(gateway, version):
    client = make_client(gateway, version)
    names = [m.name for m in client.models.list()]
    assert "models/claude-sonnet-4-6" in names and "models/claude-opus-4-8" in names
    m = client.models.get(model="gemini-2.5-flash")
    assert m.name == "models/gemini-2.5-flash" and "claude-sonnet-4.6" in m.description
    assert "generateContent" in m.supported_actions
    with pytest.raises(errors.ClientError) as e:
        client.models.get(model="gpt-4o")
    assert e.value.code == 404 and e.value.status == "NOT_FOUND"


def test_bad_key_is_unauthenticated(gateway, clean_fake):
    with pytest.raises(errors.ClientError) as e:
        make_client(gateway, key="wrong").models.generate_content(model=MODEL, contents="x")
    assert e.value.code == 401 and e.value.status == "UNAUTHENTICATED" and "x-goog-api-key" in e.value.message
    r = httpx.get(gateway.base_url + "/v1beta/models?key=wrong")
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert httpx.get(gateway.base_url + f"/v1beta/models?key={gateway.api_key}").status_code == 200
    assert not clean_fake.requests


def test_bad_request_names_the_field(gateway, clean_fake):
    with pytest.raises(errors.ClientError) as e:
        make_client(gateway).models.generate_content(model=MODEL, contents=[
            types.Part.from_uri(file_uri="gs://bucket/a.pdf", mime_type="application/pdf")])
    assert e.value.code == 400 and e.value.status == "INVALID_ARGUMENT" and "fileData" in e.value.message
    assert not clean_fake.requests


def test_upstream_throttling_is_resource_exhausted(gateway, clean_fake):
    clean_fake.add_script({"status": 429, "body": {"message": "Too many requests"}, "times": 3})
    with pytest.raises(errors.ClientError) as e:
        make_client(gateway).models.generate_content(model=MODEL, contents="x")
    assert e.value.code == 429 and e.value.status == "RESOURCE_EXHAUSTED"


def test_failure_mid_stream_raises_in_the_sdk(gateway, clean_fake):
    clean_fake.add_script({"steps": [{"text": "partial answer"}, {"drop": True}]})
    with pytest.raises(errors.APIError) as e:
        for _ in make_client(gateway).models.generate_content_stream(model=MODEL, contents="x"):
            pass
    assert "broke off" in str(e.value)


def test_stream_without_alt_sse_is_one_json_array(gateway, clean_fake):
    clean_fake.add_script({"steps": [{"text": "abc", "chunks": 3}, {"tool": {"name": "f", "input": {"a": 1}}}]})
    r = httpx.post(gateway.base_url + f"/v1beta/models/{MODEL}:streamGenerateContent",
                   headers={"x-goog-api-key": gateway.api_key},
                   json={"contents": [{"role": "user", "parts": [{"text": "go"}]}],
                         "tools": [{"functionDeclarations": [{"name": "f"}]}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    items = json.loads(r.text)
    parts = [p for item in items for p in item["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts) == "abc"
    assert parts[-1]["functionCall"]["name"] == "f" and parts[-1]["functionCall"]["args"] == {"a": 1}
    assert items[-1]["candidates"][0]["finishReason"] == "STOP" and "usageMetadata" in items[-1]
    last_kiro(clean_fake)


def test_v1_models_is_shared_with_the_other_dialects(gateway):
    gemini = httpx.get(gateway.base_url + "/v1/models", headers={"x-goog-api-key": gateway.api_key})
    assert gemini.status_code == 200 and gemini.json()["models"][0]["name"].startswith("models/")
    assert httpx.get(gateway.base_url + f"/v1/models?key={gateway.api_key}").json()["models"]
    other = httpx.get(gateway.base_url + "/v1/models", headers={"x-api-key": gateway.api_key})
    assert other.status_code == 200 and "models" not in other.json() and other.json()["data"]
