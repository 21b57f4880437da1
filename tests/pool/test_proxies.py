"""Outbound proxies: global HTTP proxy and per-credential SOCKS5, both with credentials, carry the
chat, refresh and usage calls; `direct` bypasses the global proxy."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from proxy_servers import HttpProxy, Socks5Proxy
from support import start_gateway

MODEL = "claude-sonnet-4-6"
ADMIN = "admin-key-for-proxy-tests"
ALL_THREE = {("POST", "/refreshToken"), ("GET", "/getUsageLimits"), ("POST", "/generateAssistantResponse")}


@pytest.fixture
def http_proxy():
    p = HttpProxy("proxy-user", "pa:ss w0rd").start()
    yield p
    p.stop()


@pytest.fixture
def socks_proxy():
    p = Socks5Proxy("sock-user", "s3cret!").start()
    yield p
    p.stop()


def chat(gw, text: str):
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    return client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": text}])


def balance(gw, cred_id: int) -> httpx.Response:
    return httpx.get(f"{gw.base_url}/api/admin/credentials/{cred_id}/balance", headers={"x-api-key": ADMIN})


def test_global_http_proxy_with_auth_carries_refresh_usage_and_chat(fake, clean_fake, tmp_path, http_proxy):
    acct = fake.add_account()
    creds = [{"refreshToken": acct["refresh_token"], "authMethod": "social"}]  # no token yet: must refresh
    gw = start_gateway(fake, tmp_path, creds, admin_api_key=ADMIN, usage_on_start=False,
                       proxy_url=http_proxy.url, proxy_username="proxy-user", proxy_password="pa:ss w0rd")
    try:
        assert chat(gw, "through the http proxy").content[0].text.startswith("Hello")
        assert balance(gw, 1).status_code == 200
        assert ALL_THREE <= set(http_proxy.carried())
        assert all(r["authorized"] for r in http_proxy.seen)
        assert fake.refresh_count(acct["refresh_token"]) == 1
        # The usage call as kiro.rs sends it (docs/kiro-protocol.md, “Usage limits”): query and runtime-API user agent.
        usage = next(r for r in http_proxy.seen if r["path"] == "/getUsageLimits")
        assert "origin=AI_EDITOR&resourceType=AGENTIC_REQUEST&profileArn=arn%3Aaws%3Acodewhisperer" in usage["target"]
        assert "api/codewhispererruntime" in usage["headers"]["user-agent"]
        assert usage["headers"]["x-amz-user-agent"].startswith("aws-sdk-js/1.0.0 KiroIDE-")
        assert usage["headers"]["authorization"] == "Bearer " + fake.account(acct["id"])["access_token"]
    finally:
        gw.server.stop()


def test_http_proxy_credentials_in_url_and_wrong_ones_rejected(fake, clean_fake, tmp_path, http_proxy):
    acct = fake.add_account()
    creds = [{"refreshToken": acct["refresh_token"], "accessToken": acct["access_token"],
              "expiresAt": acct["expires_at"], "proxyUrl": http_proxy.url.replace("//", "//proxy-user:wrong@")}]
    gw = start_gateway(fake, tmp_path, creds, usage_on_start=False)
    try:
        with pytest.raises(anthropic.APIStatusError):
            chat(gw, "wrong proxy password")
        assert http_proxy.seen and not http_proxy.carried()  # the proxy refused it: 407
    finally:
        gw.server.stop()


def test_per_credential_socks5_with_auth_and_direct_bypass(fake, clean_fake, tmp_path, http_proxy, socks_proxy):
    a, b = fake.add_account(), fake.add_account()
    creds = [
        {"refreshToken": a["refresh_token"], "authMethod": "social", "priority": 0,
         "proxyUrl": socks_proxy.url, "proxyUsername": "sock-user", "proxyPassword": "s3cret!"},
        {"refreshToken": b["refresh_token"], "accessToken": b["access_token"], "expiresAt": b["expires_at"],
         "authMethod": "social", "priority": 1, "proxyUrl": "direct"},
    ]
    # The global HTTP proxy is set too: A's own proxy and B's `direct` must both win over it.
    gw = start_gateway(fake, tmp_path, creds, admin_api_key=ADMIN, usage_on_start=False,
                       background_refresh=False, proxy_url=http_proxy.url,
                       proxy_username="proxy-user", proxy_password="pa:ss w0rd")
    try:
        chat(gw, "through socks")
        assert balance(gw, 1).status_code == 200
        assert ALL_THREE <= set(socks_proxy.carried())
        assert fake.refresh_count(a["refresh_token"]) == 1
        served = [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"]
        assert served[-1] == fake.account(a["id"])["access_token"]

        before = len(socks_proxy.carried())
        r = httpx.post(f"{gw.base_url}/api/admin/credentials/1/disabled", json={"disabled": True},
                       headers={"x-api-key": ADMIN})
        assert r.status_code == 200
        chat(gw, "direct now")
        assert balance(gw, 2).status_code == 200
        served = [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"]
        assert served[-1] == b["access_token"]
        assert len(socks_proxy.carried()) == before and http_proxy.seen == []
        listed = httpx.get(f"{gw.base_url}/api/admin/credentials", headers={"x-api-key": ADMIN}).json()
        views = {v["id"]: v for v in listed["credentials"]}
        assert views[1]["hasProxy"] and views[1]["proxyUrl"] == socks_proxy.url
        assert not views[2]["hasProxy"]
        assert "s3cret!" not in str(listed) and "pa:ss" not in str(listed)
    finally:
        gw.server.stop()


def test_socks5_wrong_password_fails_without_disabling(fake, clean_fake, tmp_path, socks_proxy):
    acct = fake.add_account()
    creds = [{"refreshToken": acct["refresh_token"], "proxyUrl": socks_proxy.url.replace("//", "//sock-user:nope@")}]
    gw = start_gateway(fake, tmp_path, creds, usage_on_start=False, background_refresh=False)
    try:
        with pytest.raises(anthropic.APIStatusError):
            chat(gw, "bad socks auth")
        assert socks_proxy.auth_failures >= 1 and socks_proxy.connections == 0
        assert fake.refresh_count(acct["refresh_token"]) == 0
        pool = gw.app.state.gateway.pool
        assert not pool.credentials[0].disabled  # a network failure is not the account's fault
    finally:
        gw.server.stop()


def test_unusable_proxy_url_skips_that_credential(fake, clean_fake, tmp_path):
    a, b = fake.add_account(), fake.add_account()
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
              "priority": i} for i, x in enumerate((a, b))]
    creds[0]["proxyUrl"] = "ftp://127.0.0.1:1"
    gw = start_gateway(fake, tmp_path, creds, usage_on_start=False)
    try:
        assert chat(gw, "skip the bad proxy").content[0].text.startswith("Hello")
        served = [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"]
        assert served == [b["access_token"]]
    finally:
        gw.server.stop()
