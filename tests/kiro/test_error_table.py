"""Each of Kiro's throttling and error answers → the account's state and the client's status in
its own dialect, with Retry-After where the client should wait (docs/kiro-protocol.md)."""

from __future__ import annotations

import time

import httpx
import pytest

from kiro_gateway.fake.server import FakeKiro
from kiro_gateway.pool.health import ACTIVE, COOLDOWN, EXHAUSTED
from support import start_gateway

# name -> (account state, least rest in s (0: none), anthropic, openai, gemini status, phrase in the message)
TABLE = {
    "USER_REQUEST_RATE_EXCEEDED": (COOLDOWN, 40, 429, 429, 429, "USER_REQUEST_RATE_EXCEEDED"),
    "INSUFFICIENT_MODEL_CAPACITY": (ACTIVE, 0, 529, 503, 503, "no capacity for this model"),
    "SUSPICIOUS_ACTIVITY": (COOLDOWN, 3000, 429, 429, 429, "suspicious activity"),
    "HIGH_TRAFFIC": (ACTIVE, 0, 529, 503, 503, "high volume of traffic"),
    "CREDITS_AS_THROTTLING": (EXHAUSTED, 86_400, 429, 429, 429, "rate limiting"),
    "MONTHLY_REQUEST_COUNT": (EXHAUSTED, 86_400, 429, 429, 429, "monthly request quota"),
    "MONTHLY_REQUEST_COUNT_NESTED": (EXHAUSTED, 86_400, 429, 429, 429, "monthly request quota"),
    "MODEL_TEMPORARILY_UNAVAILABLE": (ACTIVE, 0, 529, 503, 503, "overloaded"),
}


@pytest.fixture(scope="module")
def fake():
    with FakeKiro() as f:
        yield f


def post(gw, dialect):
    h = {"x-api-key": gw.api_key, "authorization": f"Bearer {gw.api_key}"}
    if dialect == "anthropic":
        return httpx.post(gw.base_url + "/v1/messages", headers=h, timeout=30, json={
            "model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]})
    if dialect == "openai":
        return httpx.post(gw.base_url + "/v1/chat/completions", headers=h, timeout=30, json={
            "model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "x"}]})
    return httpx.post(gw.base_url + "/v1beta/models/claude-sonnet-4-6:generateContent", timeout=30,
                      headers={"x-goog-api-key": gw.api_key}, json={"contents": [{"parts": [{"text": "x"}]}]})


def message(resp):
    body = resp.json()
    body = body[0] if isinstance(body, list) else body
    return body["error"]["message"]


@pytest.mark.parametrize("name", sorted(TABLE))
def test_error_table(fake, tmp_path, name):
    state, rest, *statuses, phrase = TABLE[name]
    acct = fake.add_account(usage_limit=50, current_usage=50 if name == "CREDITS_AS_THROTTLING" else 0)
    fake.add_script({"account": acct["id"], "error": name, "times": 100,
                     "headers": {"Retry-After": "42"}})
    gw = start_gateway(fake, tmp_path, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                       usage_on_start=False, background_refresh=False)
    pool = gw.app.state.gateway.pool
    try:
        for dialect, status in zip(("anthropic", "openai", "gemini"), statuses):
            resp = post(gw, dialect)
            assert resp.status_code == status, (dialect, resp.text)
            assert phrase.lower() in message(resp).lower(), (dialect, resp.text)
            if state != ACTIVE:
                assert int(resp.headers["retry-after"]) >= 1
        (cid,) = list(pool.health)
        h = pool.health[cid]
        deadline = time.time() + 5
        while h.status(False) != state and time.time() < deadline:  # the usage check runs beside
            time.sleep(0.05)
        assert h.status(False) == state
        assert h.ready_at() - time.time() >= rest - 5 if rest else h.ready_at() <= time.time()
    finally:
        gw.server.stop()
        fake.clear_scripts()
