"""Usage limits: the arithmetic of docs/kiro-protocol.md, “Usage limits”, the cache, free-tier accounts skipping Opus, and the reset date
of an exhausted account."""

from __future__ import annotations

import time

import anthropic
import httpx
import pytest

import kiro_gateway.fake.server as fake_server
from kiro_gateway.pool.usage import parse_usage
from support import start_gateway

ADMIN = "admin-key-for-usage-tests"


def test_parse_adds_active_trial_and_bonuses_only():
    data = {
        "nextDateReset": 1767225600.0,
        "daysUntilReset": 12,
        "subscriptionInfo": {"subscriptionTitle": "KIRO FREE", "type": "Q_DEVELOPER_STANDALONE_FREE"},
        "userInfo": {"email": "someone@example.com", "userId": "u1"},
        "overageConfiguration": {"overageStatus": "DISABLED"},
        "usageBreakdownList": [
            {"resourceType": "OTHER", "usageLimitWithPrecision": 9999.0, "currentUsageWithPrecision": 1.0},
            {"resourceType": "CREDIT", "usageLimit": 50, "usageLimitWithPrecision": 50.0,
             "currentUsage": 40, "currentUsageWithPrecision": 40.25, "nextDateReset": 1767225600.0,
             "freeTrialInfo": {"freeTrialStatus": "ACTIVE", "freeTrialExpiry": 1767000000,
                               "usageLimitWithPrecision": 500.0, "currentUsageWithPrecision": 100.5},
             "bonuses": [{"status": "ACTIVE", "usageLimit": 100, "currentUsage": 10},
                         {"status": "EXPIRED", "usageLimit": 1000, "currentUsage": 1000}]},
        ],
    }
    u = parse_usage(data)
    assert u.limit == 650.0  # 50 + trial 500 + active bonus 100; the expired bonus is ignored
    assert u.used == pytest.approx(150.75)
    assert u.remaining == pytest.approx(499.25)
    assert u.percentage == pytest.approx(23.19)
    assert u.next_reset == 1767225600.0 and u.days_until_reset == 12
    assert u.subscription_title == "KIRO FREE" and u.free_tier and u.email == "someone@example.com"
    assert u.free_trial["status"] == "ACTIVE" and u.free_trial["usageLimit"] == 500.0
    assert u.as_dict()["nextResetAt"] == "2026-01-01T00:00:00Z"


def test_parse_clamps_and_tolerates_missing_parts():
    over = parse_usage({"usageBreakdownList": [{"usageLimit": 10, "currentUsage": 25,
                                                "freeTrialInfo": {"freeTrialStatus": "EXPIRED", "usageLimit": 500}}]})
    assert (over.limit, over.used, over.remaining, over.percentage) == (10.0, 25.0, 0.0, 100.0)
    empty = parse_usage({})
    assert (empty.limit, empty.remaining, empty.percentage, empty.next_reset) == (0.0, 0.0, 0.0, None)
    assert empty.subscription_title is None and not empty.free_tier


def _balance(gw, cred_id, **params):
    return httpx.get(f"{gw.base_url}/api/admin/credentials/{cred_id}/balance", params=params,
                     headers={"x-api-key": ADMIN})


def test_usage_is_fetched_and_cached(fake, clean_fake, tmp_path):
    acct = fake.add_account(usage_limit=200.0, current_usage=50.0, subscription="KIRO PRO+")
    creds = [{"refreshToken": acct["refresh_token"], "accessToken": acct["access_token"],
              "expiresAt": acct["expires_at"], "profileArn": acct["profile_arn"]}]
    gw = start_gateway(fake, tmp_path, creds, admin_api_key=ADMIN, usage_on_start=False, usage_cache_seconds=0.5)
    try:
        def calls() -> int:
            return fake.stats()["paths"].get("/getUsageLimits", 0)

        start = calls()
        first = _balance(gw, 1).json()
        assert (first["usageLimit"], first["currentUsage"], first["remaining"], first["usagePercentage"]) == \
               (200.0, 50.0, 150.0, 25.0)
        assert first["subscriptionTitle"] == "KIRO PRO+" and first["email"] == acct["email"]
        assert first["cached"] is False and calls() == start + 1
        assert _balance(gw, 1).json()["cached"] is True and calls() == start + 1
        assert _balance(gw, 1, refresh="true").json()["cached"] is False and calls() == start + 2
        time.sleep(0.6)  # past usageCacheSeconds
        assert _balance(gw, 1).json()["cached"] is False and calls() == start + 3
        # The title and email are kept with the credential (and so in the file).
        stored = gw.app.state.gateway.pool.credentials[0].raw
        assert stored["subscriptionTitle"] == "KIRO PRO+" and stored["email"] == acct["email"]
        assert "KIRO PRO+" in gw.credentials_path.read_text()
    finally:
        gw.server.stop()


def test_free_tier_account_is_skipped_for_opus_only(fake, clean_fake, tmp_path):
    free = fake.add_account(subscription="KIRO FREE")
    pro = fake.add_account(subscription="KIRO PRO")
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
              "priority": i} for i, x in enumerate((free, pro))]
    # The subscriptions are learnt in the background, without any request.
    gw = start_gateway(fake, tmp_path, creds, refresh_check_interval=0.1, refresh_spread=0.01)
    try:
        pool = gw.app.state.gateway.pool
        deadline = time.time() + 5
        while not all(c.raw.get("subscriptionTitle") for c in pool.credentials) and time.time() < deadline:
            time.sleep(0.02)
        assert [c.raw.get("subscriptionTitle") for c in pool.credentials] == ["KIRO FREE", "KIRO PRO"]
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)

        def served(model: str) -> str:
            client.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": model}])
            return [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"][-1]

        assert served("claude-opus-4-6") == pro["access_token"]  # priority says free, Opus says no
        assert served("claude-sonnet-4-6") == free["access_token"]
    finally:
        gw.server.stop()


def test_quota_exhaustion_waits_for_the_reset_date_from_usage_limits(fake, clean_fake, tmp_path, monkeypatch):
    reset = time.time() + 5 * 86400 + 1234  # not the 1st of next month, so the source is clear
    real = fake_server.usage_limits

    def with_reset(acct, now=None):
        data = real(acct, now)
        data["nextDateReset"] = reset
        data["usageBreakdownList"][0]["nextDateReset"] = reset
        return data

    monkeypatch.setattr(fake_server, "usage_limits", with_reset)
    a, b = fake.add_account(), fake.add_account()
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
              "priority": i} for i, x in enumerate((a, b))]
    gw = start_gateway(fake, tmp_path, creds, usage_on_start=False)
    try:
        fake.add_script({"token": a["access_token"], "status": 402,
                         "body": {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}})
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        client.messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=[{"role": "user", "content": "q"}])
        pool = gw.app.state.gateway.pool
        h = pool.health[pool.credentials[0].id]
        deadline = time.time() + 5
        while abs(h.exhausted_until - reset) > 1 and time.time() < deadline:
            time.sleep(0.02)
        assert abs(h.exhausted_until - reset) < 1 and pool.status(pool.credentials[0]) == "exhausted"
        # Known now: a second exhaustion uses the cached date at once, without asking Kiro again.
        assert pool.usage.reset_at(pool.credentials[0]) == pytest.approx(reset)
        h.reset()
        fetches = fake.stats()["paths"].get("/getUsageLimits", 0)
        fake.add_script({"token": a["access_token"], "status": 402,
                         "body": {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}})
        client.messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=[{"role": "user", "content": "q2"}])
        assert abs(h.exhausted_until - reset) < 1
        time.sleep(0.2)
        assert fake.stats()["paths"].get("/getUsageLimits", 0) == fetches
    finally:
        gw.server.stop()
