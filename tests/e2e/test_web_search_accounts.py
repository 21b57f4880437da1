"""Web search on the pool's accounts, as chat is: every account type on the host that serves it,
Builder ID moved to the legacy host once, an early-revoked token refreshed once, a failing
account left for the next; the search's own failure reported in the reply, not as an error."""

from __future__ import annotations

import anthropic
import pytest

from kiro_gateway.fake.server import FakeKiro
from support import credential_for as credential, start_gateway

SEARCH_ONLY = dict(model="claude-sonnet-4-6", max_tokens=100, tools=[{"type": "web_search_20250305", "name": "web_search"}])


@pytest.fixture
def fake():
    with FakeKiro() as f:
        yield f


@pytest.fixture
def gateways(fake, tmp_path):
    started = []

    def start(creds, **kw):
        gw = start_gateway(fake, tmp_path / str(len(started)), creds, runtime_base_url=fake.base_url + "/runtime",
                           profiles_base_url=fake.base_url + "/profiles/{region}", usage_on_start=False, **kw)
        started.append(gw)
        return gw

    for i in range(4):
        (tmp_path / str(i)).mkdir()
    yield start
    for gw in started:
        gw.server.stop()


def search(gw, query):
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    return client.messages.create(**SEARCH_ONLY, messages=[{"role": "user", "content": query}])


def searches(fake):
    return [(r["host"], r["status"], r.get("account"), r["headers"].get("tokentype"),
             (r["body"] or {}).get("profileArn") if r["host"] == "runtime" else r["headers"].get("x-amzn-kiro-profile-arn"))
            for r in fake.requests if r["path"].endswith("/mcp")]


@pytest.mark.parametrize("kind", ["social", "idc", "api_key"])
def test_accounts_with_a_profile_search_on_the_branded_host(fake, gateways, kind):
    acct = fake.add_account(id="a", auth="idc" if kind == "idc" else kind,
                            profile_region="eu-central-1" if kind == "idc" else None)
    gw = gateways([credential(kind, acct)])
    assert search(gw, "one").content[1].type == "web_search_tool_result"
    token_type = "API_KEY" if kind == "api_key" else None
    assert searches(fake) == [("runtime", 200, "a", token_type, acct["profile_arn"])]


def test_builder_id_searches_on_the_legacy_host_after_one_refusal(fake, gateways):
    acct = fake.add_account(id="b", auth="idc", builder_id=True)
    gw = gateways([credential("idc", acct)])
    assert isinstance(search(gw, "first").content[1].content, list)
    assert isinstance(search(gw, "second").content[1].content, list)
    assert searches(fake) == [("runtime", 400, "b", None, None), ("legacy", 200, "b", None, None),
                              ("legacy", 200, "b", None, None)]


def test_a_token_revoked_early_is_refreshed_once(fake, gateways):
    acct = fake.add_account(id="s")
    gw = gateways([credential("social", acct)])
    search(gw, "before")
    refreshed = fake.refresh_count("s")
    fake.update_account("s", expires_at=1.0)  # Kiro no longer takes the token the gateway holds
    assert isinstance(search(gw, "after").content[1].content, list)
    assert fake.refresh_count("s") == refreshed + 1
    assert [s[1] for s in searches(fake)] == [200, 403, 200]


def test_an_exhausted_account_is_left_for_the_next(fake, gateways):
    spent = fake.add_account(id="spent", quota_exhausted=True)
    fresh = fake.add_account(id="fresh")
    gw = gateways([credential("social", spent), credential("social", fresh)])
    msg = search(gw, "quota")
    assert msg.content[1].tool_use_id == msg.content[0].id and isinstance(msg.content[1].content, list)
    assert [(s[1], s[2]) for s in searches(fake)] == [(402, "spent"), (200, "fresh")]


def test_a_failed_search_is_reported_in_the_reply(fake, gateways):
    fake.add_account(id="s")
    gw = gateways([credential("social", fake.account("s"))])
    msg = search(gw, "fake:error on purpose")
    result = msg.content[1]
    assert result.type == "web_search_tool_result" and result.content.type == "web_search_tool_result_error"
    assert result.content.error_code == "unavailable"
    assert "failed (unavailable)" in msg.content[2].text and msg.usage.server_tool_use.web_search_requests == 1
    assert [s[1] for s in searches(fake)] == [200]  # the search's own failure: no other account tried


def test_no_account_can_search_is_an_error_in_the_clients_shape(fake, gateways):
    fake.add_account(id="s")
    gw = gateways([credential("social", fake.account("s"))])
    with pytest.raises(anthropic.RateLimitError) as caught:
        search(gw, "fake:throttle now")
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert [s[1] for s in searches(fake)] == [429]


@pytest.mark.parametrize("endpoint,host", [("legacy", "legacy"), ("runtime", "runtime")])
def test_the_credentials_endpoint_chooses_the_host_as_for_chat(fake, gateways, endpoint, host):
    acct = fake.add_account(id="e")
    gw = gateways([credential("social", acct) | {"endpoint": endpoint}])
    search(gw, "where")
    assert searches(fake) == [(host, 200, "e", None, acct["profile_arn"])]


def test_leaving_in_the_round_after_a_search_closes_its_kiro_stream(fake, gateways):
    import time

    import httpx

    acct = fake.add_account(id="l")
    gw = gateways([credential("social", acct)], admin_api_key="admin-ws", ping_interval=30.0)
    fake.add_script({"match": "slow search", "times": 1, "steps": [
        {"text": "Looking."}, {"tool": {"name": "web_search", "input": {"query": "slow"}}}]})
    steps = [{"text": "first words"}] + [s for i in range(40) for s in ({"delay": 0.1}, {"text": f" w{i}"})]
    fake.add_script({"match": "Web search results for", "times": 1, "steps": steps})
    body = {**SEARCH_ONLY, "stream": True, "tools": SEARCH_ONLY["tools"] + [{
        "name": "f", "input_schema": {"type": "object"}}], "messages": [{"role": "user", "content": "slow search"}]}
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", gw.base_url + "/v1/messages", json=body, headers={"x-api-key": gw.api_key}) as r:
            seen = b""
            for chunk in r.iter_raw():
                seen += chunk
                if b"first words" in seen:
                    break
            assert b"web_search_tool_result" in seen
    deadline = time.time() + 3
    in_flight = None
    while time.time() < deadline:
        creds = httpx.get(gw.base_url + "/api/admin/credentials", headers={"x-api-key": "admin-ws"}).json()
        in_flight = sum(c["inFlight"] for c in creds["credentials"])
        chats = [x for x in fake.requests if x["path"].endswith("/generateAssistantResponse")]
        if len(chats) == 2 and chats[-1].get("ended") and in_flight == 0:
            break
        time.sleep(0.05)
    assert chats[-1].get("ended") == "client_gone" and in_flight == 0
