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
    assert [c["query"] for c in calls] == list(queries)
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
