"""Every account type served through the anthropic SDK: the gateway picks the host, sends the
profile ARN it has or discovers, and moves a Builder ID account to the legacy host once, for good."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import pytest

from kiro_gateway.fake.server import FakeKiro
from support import credential_for as credential, start_gateway


@pytest.fixture
def fake2026():
    with FakeKiro() as f:
        yield f


def gateway_for(fake, tmp, creds, **kw):
    return start_gateway(fake, tmp, creds, runtime_base_url=fake.base_url + "/runtime",
                         profiles_base_url=fake.base_url + "/profiles/{region}", **kw)


def ask(gw, text="hello"):
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    msg = client.messages.create(model="claude-sonnet-4-6", max_tokens=50,
                                 messages=[{"role": "user", "content": text}])
    return msg.content[0].text


def chats(fake):
    return [(r["host"], r["status"], (r["body"] or {}).get("profileArn")) for r in fake.requests
            if r["path"].endswith("/generateAssistantResponse")]


def listings(fake):
    return sum(n for path, n in fake.stats()["paths"].items() if path.startswith("/profiles/"))


@pytest.mark.parametrize("kind", ["social", "idc", "api_key"])
def test_accounts_with_a_profile_use_the_branded_host(fake2026, tmp_path, kind):
    auth = "idc" if kind == "idc" else kind
    acct = fake2026.add_account(auth=auth, profile_region="eu-central-1" if kind == "idc" else None)
    gw = gateway_for(fake2026, tmp_path, [credential(kind, acct)])
    try:
        assert "hello" in ask(gw)
        assert "again" in ask(gw, "again")
    finally:
        gw.server.stop()
    # Social learns its ARN from the refresh; IdC and API-key accounts find it once by listing.
    assert chats(fake2026) == [("runtime", 200, acct["profile_arn"])] * 2
    assert listings(fake2026) == (0 if kind == "social" else 1 if kind == "api_key" else 2)


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    from redis_server import start_redis

    server = start_redis()
    request.addfinalizer(server.stop)
    return server.url


def test_builder_id_moves_to_the_legacy_host_once_and_remembers(fake2026, tmp_path, state_url):
    acct = fake2026.add_account(auth="idc", builder_id=True)
    gw = gateway_for(fake2026, tmp_path, [credential("idc", acct)], state_url=state_url, usage_on_start=False)
    try:
        assert "hello" in ask(gw)
        assert "again" in ask(gw, "again")
    finally:
        gw.server.stop()
    assert chats(fake2026) == [("runtime", 400, None), ("legacy", 200, None), ("legacy", 200, None)]
    fake2026.clear_requests()
    gw = gateway_for(fake2026, tmp_path, [credential("idc", acct)], state_url=state_url,
                     usage_on_start=False, admin_api_key="admin-key-e2e")  # a restart
    try:
        assert "after" in ask(gw, "after restart")
        balance = httpx.get(gw.base_url + "/api/admin/credentials/1/balance", headers={"x-api-key": "admin-key-e2e"})
        assert balance.status_code == 200, balance.text  # usage limits from the host that serves it
    finally:
        gw.server.stop()
    assert chats(fake2026) == [("legacy", 200, None)]
    assert [p for p in fake2026.stats()["paths"] if "getUsageLimits" in p] == ["/getUsageLimits"]
    assert listings(fake2026) == 1  # asked once before the restart (refused: Builder ID), not again


def test_endpoint_and_kiro_version_per_credential(fake2026, tmp_path):
    acct = fake2026.add_account()
    creds = [credential("social", acct) | {"endpoint": "legacy", "kiroVersion": "1.0.437"}]
    gw = gateway_for(fake2026, tmp_path, creds)
    try:
        assert "hello" in ask(gw)
    finally:
        gw.server.stop()
    (req,) = [r for r in fake2026.requests if r["path"].endswith("/generateAssistantResponse")]
    assert req["host"] == "legacy" and "KiroIDE-1.0.437-" in req["headers"]["x-amz-user-agent"]


def test_a_relay_with_a_path_prefix(fake2026, tmp_path):
    acct = fake2026.add_account()
    gw = gateway_for(fake2026, tmp_path, [credential("social", acct)], endpoint="runtime")
    try:
        assert "hello" in ask(gw)
    finally:
        gw.server.stop()
    assert [r["path"] for r in fake2026.requests if "generate" in r["path"]] == ["/runtime/generateAssistantResponse"]


def test_usage_limits_of_a_builder_id_account_switch_the_host_once(fake2026, tmp_path):
    acct = fake2026.add_account(auth="idc", builder_id=True)
    gw = gateway_for(fake2026, tmp_path, [credential("idc", acct)], usage_on_start=False,
                     admin_api_key="admin-key-e2e")
    try:
        for _ in range(2):
            r = httpx.get(gw.base_url + "/api/admin/credentials/1/balance?refresh=true",
                          headers={"x-api-key": "admin-key-e2e"})
            assert r.status_code == 200, r.text
        assert "hello" in ask(gw)  # the chat goes straight to the host the usage call found
    finally:
        gw.server.stop()
    paths = fake2026.stats()["paths"]
    assert paths.get("/runtime/getUsageLimits") == 1 and paths.get("/getUsageLimits", 0) >= 1
    assert chats(fake2026) == [("legacy", 200, None)]


def test_a_login_discovers_the_new_accounts_profile_at_once(fake2026, tmp_path):
    seed = fake2026.add_account()
    gw = gateway_for(fake2026, tmp_path, [credential("social", seed)], usage_on_start=False,
                     admin_api_key="admin-key-e2e")
    api = httpx.Client(base_url=gw.base_url + "/api/admin", headers={"x-api-key": "admin-key-e2e"}, timeout=15)
    try:
        r = api.post("/logins", json={"method": "idc", "startUrl": "https://my-org.awsapps.com/start",
                                      "region": "eu-west-1"})
        assert r.status_code == 201, r.text
        fake2026.approve_login(r.json()["userCode"], profile_region="eu-central-1")
        deadline = time.time() + 10
        facts = gw.app.state.gateway.upstream.facts
        while time.time() < deadline and not ((facts._facts.get("2") or {}).get("profileArn")
                                              and facts.known_models("2")):
            time.sleep(0.05)  # the profile, then the models, are learnt one after the other
        saved = json.loads(gw.credentials_path.read_text())
        acct = fake2026.account(saved[1]["refreshToken"])
        assert acct["profile_arn"].split(":")[3] == "eu-central-1"
        assert facts._facts["2"]["profileArn"] == acct["profile_arn"]
        assert facts.known_models("2")  # and its models, before any request
    finally:
        api.close()
        gw.server.stop()
    assert listings(fake2026) == 2  # us-east-1 (none there), eu-central-1 (found)
    assert chats(fake2026) == []


@pytest.mark.parametrize("endpoint", ["legacy", "runtime"])
def test_a_credential_can_present_itself_as_kiro_cli(fake2026, tmp_path, endpoint):
    acct = fake2026.add_account()
    ide, cli = credential("social", acct), credential("social", fake2026.add_account()) | {"identity": "cli"}
    gw = gateway_for(fake2026, tmp_path, [ide | {"priority": 0}, cli | {"priority": 1}], endpoint=endpoint)
    try:
        assert "hello" in ask(gw)
        gw.app.state.gateway.pool.credentials[0].raw["disabled"] = True
        assert "again" in ask(gw, "again")
    finally:
        gw.server.stop()
    reqs = [r for r in fake2026.requests if r.get("status") == 200 and r.get("body")]
    first, second = reqs[-2], reqs[-1]
    prefix = "/runtime" if endpoint == "runtime" else ""
    assert first["path"] == prefix + "/generateAssistantResponse" and "x-amz-target" not in first["headers"]
    assert second["path"] == prefix + "/"
    assert second["headers"]["x-amz-target"] == ("KiroRuntimeService" if endpoint == "runtime" else
                                                  "AmazonCodeWhispererStreamingService") + ".GenerateAssistantResponse"
    assert second["headers"]["content-type"] == "application/x-amz-json-1.0"
    assert "KiroCLI-" in second["headers"]["user-agent"]
    assert second["body"]["conversationState"]["currentMessage"]["userInputMessage"]["origin"] == "KIRO_CLI"
