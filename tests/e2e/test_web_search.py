"""Web search through each dialect's official SDK → gateway → the fake Kiro's MCP web_search.

The gateway here has a branded host (`/runtime` of the fake), so a search goes to `/runtime/mcp`
with the account's profile ARN at the body's root, as Kiro wants it. A request whose only tool is
a web search is answered with the results (no model call); a web search among other tools is a
function the model may call, which the gateway runs and answers before the model goes on.
"""

from __future__ import annotations

import anthropic
import pytest

from kiro_gateway.fake.mcp import search_results
from kiro_gateway.fake.server import FakeKiro
from support import start_gateway

MODEL = "claude-sonnet-4-6"
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
WEATHER_TOOL = {"name": "get_weather", "description": "Current weather for a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def fake():
    with FakeKiro() as f:
        f.account_info = f.add_account()
        yield f


@pytest.fixture(scope="module")
def gateway(fake, tmp_path_factory):
    acct = fake.account_info
    gw = start_gateway(fake, tmp_path_factory.mktemp("ws"),
                       [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                       runtime_base_url=fake.base_url + "/runtime", usage_on_start=False)
    yield gw
    gw.server.stop()


@pytest.fixture(scope="module")
def gateway_off(fake, tmp_path_factory):
    acct = fake.add_account()
    gw = start_gateway(fake, tmp_path_factory.mktemp("ws-off"),
                       [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                       runtime_base_url=fake.base_url + "/runtime", usage_on_start=False, web_search="off")
    yield gw
    gw.server.stop()


@pytest.fixture
def clean(fake):
    fake.clear_scripts()
    fake.clear_requests()
    yield fake
    fake.clear_scripts()


def mcp_calls(fake) -> list[dict]:
    return [r for r in fake.requests if r["path"].endswith("/mcp")]


def chats(fake) -> list[dict]:
    return [r for r in fake.requests if r["path"].endswith("/generateAssistantResponse")]


def expected(query: str) -> list[dict]:
    return search_results(query)["results"]


def assert_searched(fake, *queries: str) -> None:
    calls = mcp_calls(fake)
    assert [c["search"] for c in calls] == list(queries)
    acct = fake.account_info
    for c in calls:
        assert (c["host"], c["status"], c["verdict"]) == ("runtime", 200, "ok"), c
        assert c["body"]["profileArn"] == acct["profile_arn"]
        assert c["headers"]["x-amzn-kiro-profile-arn"] == acct["profile_arn"]
        assert "KiroIDE-" in c["headers"]["x-amz-user-agent"] and "x-amzn-kiro-agent-mode" not in c["headers"]


# -- Anthropic --------------------------------------------------------------------------------------


def anthropic_client(gw):
    return anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def check_anthropic_search(msg, query: str) -> None:
    kinds = [b.type for b in msg.content]
    assert kinds[:3] == ["server_tool_use", "web_search_tool_result", "text"], kinds
    use, result = msg.content[0], msg.content[1]
    assert use.name == "web_search" and use.input == {"query": query} and use.id.startswith("srvtoolu_")
    assert result.tool_use_id == use.id
    hits = expected(query)
    assert [(r.type, r.title, r.url) for r in result.content] == [("web_search_result", h["title"], h["url"])
                                                                    for h in hits]
    assert all(r.encrypted_content and r.page_age for r in result.content)
    cited = [b for b in msg.content[2:] if b.type == "text" and b.citations]
    assert [c.citations[0].url for c in cited] == [h["url"] for h in hits]
    first = cited[0].citations[0]
    assert first.type == "web_search_result_location" and first.title == hits[0]["title"]
    assert first.cited_text == hits[0]["snippet"][:150] and first.encrypted_index
    assert hits[0]["url"] in cited[0].text
    assert msg.usage.server_tool_use.web_search_requests == 1
    assert msg.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_search_only_request(gateway, clean, stream):
    """Claude Code's WebSearch sub-request: only the server tool, the query in its own words."""
    client = anthropic_client(gateway)
    kw = dict(model=MODEL, max_tokens=4096, tools=[SEARCH_TOOL], tool_choice={"type": "tool", "name": "web_search"},
              messages=[{"role": "user", "content": "Perform a web search for the query: kiro gateway 2026"}])
    if stream:
        with client.messages.stream(**kw) as s:
            events = [e.type for e in s]
            msg = s.get_final_message()
        assert events[0] == "message_start" and events[-1] == "message_stop"
    else:
        msg = client.messages.create(**kw)
    check_anthropic_search(msg, "kiro gateway 2026")
    assert_searched(clean, "kiro gateway 2026")
    assert chats(clean) == []  # no model was asked


# -- OpenAI Chat Completions ----------------------------------------------------------------------


def openai_client(gw):
    import openai

    return openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0)


def check_url_citations(text: str, annotations: list, query: str) -> None:
    hits = expected(query)
    assert [(a.url, a.title) for a in annotations] == [(h["url"], h["title"]) for h in hits]
    for a, h in zip(annotations, hits):
        cited = text[a.start_index:a.end_index]
        assert h["url"] in cited and h["snippet"] in cited


def test_chat_search_options_non_streamed(gateway, clean):
    msg = openai_client(gateway).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "latest python release"}], web_search_options={})
    choice = msg.choices[0]
    assert choice.finish_reason == "stop"
    text = choice.message.content
    assert text.startswith('Web search results for "latest python release"')
    check_url_citations(text, [a.url_citation for a in choice.message.annotations], "latest python release")
    assert all(a.type == "url_citation" for a in choice.message.annotations)
    assert_searched(clean, "latest python release")
    assert chats(clean) == []


def test_chat_search_tool_streamed(gateway, clean):
    with openai_client(gateway).chat.completions.stream(
            model=MODEL, messages=[{"role": "user", "content": "kiro ide changelog"}],
            tools=[{"type": "web_search"}]) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    message = final.choices[0].message
    check_url_citations(message.content, [a.url_citation for a in message.annotations], "kiro ide changelog")
    assert_searched(clean, "kiro ide changelog")


# -- OpenAI Responses -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_responses_search_only(gateway, clean, stream):
    client = openai_client(gateway)
    kw = dict(model=MODEL, input="what is new in aiohttp", tools=[{"type": "web_search"}])
    if stream:
        with client.responses.stream(**kw) as s:
            types = [e.type for e in s]
            resp = s.get_final_response()
        assert types.index("response.web_search_call.in_progress") < types.index("response.web_search_call.searching") \
            < types.index("response.web_search_call.completed") < types.index("response.output_text.annotation.added")
    else:
        resp = client.responses.create(**kw)
    call, message = resp.output
    assert call.type == "web_search_call" and call.status == "completed" and call.id.startswith("ws_")
    assert call.action.type == "search" and call.action.query == "what is new in aiohttp"
    hits = expected("what is new in aiohttp")
    assert [src.url for src in call.action.sources] == [h["url"] for h in hits]
    text = message.content[0]
    assert message.type == "message" and text.type == "output_text"
    check_url_citations(text.text, text.annotations, "what is new in aiohttp")
    assert resp.output_text == text.text
    assert_searched(clean, "what is new in aiohttp")


# -- Gemini ---------------------------------------------------------------------------------------


def gemini_client(gw):
    from google import genai
    from google.genai import types

    return genai.Client(vertexai=False, api_key=gw.api_key,
                        http_options=types.HttpOptions(base_url=gw.base_url, api_version="v1beta"))


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_google_search(gateway, clean, stream):
    from google.genai import types

    client = gemini_client(gateway)
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    kw = dict(model="gemini-2.5-pro", contents="weather in lisbon", config=config)
    if stream:
        chunks = list(client.models.generate_content_stream(**kw))
        text = "".join(c.text or "" for c in chunks)
        final = chunks[-1]
    else:
        final = client.models.generate_content(**kw)
        text = final.text
    meta = final.candidates[0].grounding_metadata
    hits = expected("weather in lisbon")
    assert meta.web_search_queries == ["weather in lisbon"]
    assert [(c.web.uri, c.web.title) for c in meta.grounding_chunks] == [(h["url"], h["title"]) for h in hits]
    raw = text.encode()
    for i, support in enumerate(meta.grounding_supports):
        seg = support.segment
        assert raw[seg.start_index:seg.end_index].decode() == seg.text
        assert support.grounding_chunk_indices == [i] and hits[i]["url"] in seg.text
    assert_searched(clean, "weather in lisbon")


# -- A web search among other tools: the model calls it, the gateway answers it -----------------


def script_search(fake, match: str, *queries: str, text: str = "Let me look that up.", extra: list | None = None):
    steps = [{"text": text}] + [{"tool": {"name": "web_search", "input": {"query": q}}} for q in queries]
    fake.add_script({"match": match, "times": 1, "steps": steps + (extra or [])})


def follow_up(fake) -> dict:
    """The chat request that carried the search results back to the model."""
    first, second = chats(fake)
    spec = {t["toolSpecification"]["name"] for t in first["body"]["conversationState"]["currentMessage"][
        "userInputMessage"]["userInputMessageContext"]["tools"]}
    assert "web_search" in spec
    state = second["body"]["conversationState"]
    assert all(r["rule"] is None and r["status"] == 200 for r in (first, second))
    return state


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_model_searches_then_answers(gateway, clean, stream):
    script_search(clean, "what changed in kiro", "kiro changes")
    client = anthropic_client(gateway)
    kw = dict(model=MODEL, max_tokens=1024, tools=[WEATHER_TOOL, SEARCH_TOOL],
              messages=[{"role": "user", "content": "what changed in kiro this year?"}])
    if stream:
        with client.messages.stream(**kw) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**kw)
    assert [b.type for b in msg.content] == ["text", "server_tool_use", "web_search_tool_result", "text"]
    assert msg.content[0].text == "Let me look that up."
    assert msg.content[1].input == {"query": "kiro changes"}
    assert [r.url for r in msg.content[2].content] == [h["url"] for h in expected("kiro changes")]
    assert msg.content[3].text.startswith('Received 1 tool result(s): Web search results for "kiro changes"')
    assert msg.stop_reason == "end_turn" and msg.usage.server_tool_use.web_search_requests == 1
    assert_searched(clean, "kiro changes")
    state = follow_up(clean)
    use = state["history"][-1]["assistantResponseMessage"]
    assert use["content"] == "Let me look that up." and use["toolUses"][0]["name"] == "web_search"
    result = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]
    assert result["toolUseId"] == use["toolUses"][0]["toolUseId"] and result["status"] == "success"
    assert expected("kiro changes")[0]["url"] in result["content"][0]["text"]


def test_anthropic_search_and_a_client_tool_in_one_turn(gateway, clean):
    script_search(clean, "weather and news", "paris news",
                  extra=[{"tool": {"name": "get_weather", "input": {"city": "Paris"}}}])
    msg = anthropic_client(gateway).messages.create(
        model=MODEL, max_tokens=1024, tools=[WEATHER_TOOL, SEARCH_TOOL],
        messages=[{"role": "user", "content": "weather and news for Paris"}])
    # The client's call streams as it comes; the search is run and shown once the model's turn ended.
    assert [b.type for b in msg.content] == ["text", "tool_use", "server_tool_use", "web_search_tool_result"]
    assert msg.content[1].name == "get_weather" and msg.stop_reason == "tool_use"
    assert len(chats(clean)) == 1 and [c["search"] for c in mcp_calls(clean)] == ["paris news"]
    # The client sends the whole turn back with its tool's result: the search reaches the model as text.
    history = [{"role": "user", "content": "weather and news for Paris"},
               {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": msg.content[1].id,
                                             "content": "18 C"}]}]
    again = anthropic_client(gateway).messages.create(model=MODEL, max_tokens=1024,
                                                      tools=[WEATHER_TOOL, SEARCH_TOOL], messages=history)
    assert again.stop_reason == "end_turn"
    last = chats(clean)[-1]
    assert last["rule"] is None
    echoed = last["body"]["conversationState"]["history"][-1]["assistantResponseMessage"]["content"]
    assert "[web search results]" in echoed and expected("paris news")[0]["snippet"] in echoed


def test_anthropic_max_uses(gateway, clean):
    script_search(clean, "two searches", "first query", "second query")
    msg = anthropic_client(gateway).messages.create(
        model=MODEL, max_tokens=1024, tools=[WEATHER_TOOL, SEARCH_TOOL | {"max_uses": 1}],
        messages=[{"role": "user", "content": "two searches please"}])
    results = [b for b in msg.content if b.type == "web_search_tool_result"]
    assert isinstance(results[0].content, list)
    assert results[1].content.type == "web_search_tool_result_error"
    assert results[1].content.error_code == "max_uses_exceeded"
    assert [c["search"] for c in mcp_calls(clean)] == ["first query"]
    state = follow_up(clean)
    current = state["currentMessage"]["userInputMessage"]
    assert current["content"].endswith("[Do not call any tools in this reply; answer in text.]")
    assert msg.usage.server_tool_use.web_search_requests == 1


def test_chat_model_searches_then_answers(gateway, clean):
    script_search(clean, "python news", "python 3.15")
    with openai_client(gateway).chat.completions.stream(
            model=MODEL, messages=[{"role": "user", "content": "python news?"}], web_search_options={},
            tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    message = final.choices[0].message
    assert message.content.startswith("Let me look that up.Received 1 tool result(s)")
    assert not message.tool_calls and final.choices[0].finish_reason == "stop"
    assert_searched(clean, "python 3.15")
    follow_up(clean)


@pytest.mark.parametrize("stream", [False, True])
def test_responses_model_searches_then_answers(gateway, clean, stream):
    script_search(clean, "codex news", "codex release")
    kw = dict(model=MODEL, input="codex news?", tools=[{"type": "web_search"}, {
        "type": "function", "name": "shell", "parameters": {"type": "object"}}])
    if stream:
        with openai_client(gateway).responses.stream(**kw) as s:
            resp = s.get_final_response()
    else:
        resp = openai_client(gateway).responses.create(**kw)
    assert [o.type for o in resp.output] == ["message", "web_search_call", "message"]
    assert resp.output[1].action.query == "codex release" and resp.output[1].status == "completed"
    assert resp.output[2].content[0].text.startswith("Received 1 tool result(s)")
    assert_searched(clean, "codex release")
    follow_up(clean)


def test_gemini_model_searches_then_answers(gateway, clean):
    from google.genai import types

    script_search(clean, "gemini news", "gemini cli release")
    weather = types.FunctionDeclaration(name="get_weather", parameters=types.Schema(type="OBJECT"))
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch()),
                                                types.Tool(function_declarations=[weather])])
    client = gemini_client(gateway)  # a collected Client closes its HTTP client
    resp = client.models.generate_content(model="gemini-2.5-pro", contents="gemini news?", config=config)
    assert resp.text.startswith("Let me look that up.Received 1 tool result(s)")
    meta = resp.candidates[0].grounding_metadata
    assert meta.web_search_queries == ["gemini cli release"]
    assert [c.web.uri for c in meta.grounding_chunks] == [h["url"] for h in expected("gemini cli release")]
    assert not resp.function_calls
    follow_up(clean)


# -- webSearch: off ---------------------------------------------------------------------------------


def test_off_drops_the_search_tools_as_before(gateway_off, clean):
    """Every dialect's search tool is left out; the model answers; Kiro's MCP is never called."""
    from google.genai import types

    a = anthropic_client(gateway_off).messages.create(
        model=MODEL, max_tokens=100, tools=[SEARCH_TOOL],
        messages=[{"role": "user", "content": "Perform a web search for the query: off mode"}])
    assert [b.type for b in a.content] == ["text"] and a.usage.server_tool_use is None
    oa = openai_client(gateway_off)
    c = oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "off chat"}],
                                   web_search_options={}, tools=[{"type": "function", "function": {
                                       "name": "get_weather", "parameters": {"type": "object"}}}])
    assert c.choices[0].message.annotations is None
    r = oa.responses.create(model=MODEL, input="off responses", tools=[{"type": "web_search"}])
    assert [o.type for o in r.output] == ["message"]
    client = gemini_client(gateway_off)
    g = client.models.generate_content(model="gemini-2.5-pro", contents="off gemini", config=types.GenerateContentConfig(
        tools=[types.Tool(google_search=types.GoogleSearch())]))
    assert g.candidates[0].grounding_metadata is None
    assert mcp_calls(clean) == []
    sent = chats(clean)
    assert len(sent) == 4 and all(r["status"] == 200 and r["rule"] is None for r in sent)
    tools = [[t["toolSpecification"]["name"] for t in (r["body"]["conversationState"]["currentMessage"][
        "userInputMessage"].get("userInputMessageContext") or {}).get("tools", [])] for r in sent]
    assert tools == [[], ["get_weather"], [], []]
