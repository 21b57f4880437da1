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
