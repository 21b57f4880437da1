"""Background refresh: tokens are renewed before they come due, once, spread out, and the task
stops with the app."""

from __future__ import annotations

import json
import time

import anthropic

from kiro_gateway.pool.credential import format_expiry
from support import start_gateway

FAST = {"refresh_check_interval": 0.1, "usage_on_start": False}


def wait_for(cond, timeout: float = 5.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_about_to_expire_credential_is_refreshed_once_before_any_request(fake, clean_fake, tmp_path):
    soon, later = fake.add_account(), fake.add_account()
    creds = [  # refreshBefore 600 + refreshMargin 300: 700 s left is due, 3000 s is not
        {"refreshToken": soon["refresh_token"], "accessToken": soon["access_token"],
         "expiresAt": format_expiry(time.time() + 700), "authMethod": "social"},
        {"refreshToken": later["refresh_token"], "accessToken": later["access_token"],
         "expiresAt": format_expiry(time.time() + 3000), "authMethod": "social"},
    ]
    gw = start_gateway(fake, tmp_path, creds, **FAST)
    try:
        assert wait_for(lambda: fake.refresh_count(soon["refresh_token"]) == 1)
        time.sleep(0.6)  # several more passes: nothing is due any more
        assert fake.refresh_count(soon["refresh_token"]) == 1
        assert fake.refresh_count(later["refresh_token"]) == 0
        assert not [r for r in fake.requests if r["path"] == "/generateAssistantResponse"]
        new_token = fake.account(soon["id"])["access_token"]
        assert new_token != soon["access_token"]
        stored = json.loads(gw.credentials_path.read_text())
        assert stored[0]["accessToken"] == new_token  # written back
        # A request now finds a fresh token: no refresh at request time.
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        client.messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        assert fake.refresh_count(soon["refresh_token"]) == 1
        assert [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"] == [new_token]
    finally:
        gw.server.stop()
    refresher = gw.app.state.refresher
    assert refresher._task is None  # stopped by the lifespan's shutdown


def test_due_credentials_are_refreshed_one_at_a_time_spread_out(fake, clean_fake, tmp_path):
    accts = [fake.add_account() for _ in range(3)]
    creds = [{"refreshToken": a["refresh_token"], "authMethod": "social"} for a in accts]  # no token: due
    gw = start_gateway(fake, tmp_path, creds, refresh_spread=0.4, **FAST)
    try:
        seen: dict[str, float] = {}
        deadline = time.time() + 5
        while len(seen) < 3 and time.time() < deadline:
            for a in accts:
                if a["id"] not in seen and fake.refresh_count(a["refresh_token"]):
                    seen[a["id"]] = time.time()
            time.sleep(0.005)
        assert len(seen) == 3
        times = sorted(seen.values())
        assert all(b - a >= 0.15 for a, b in zip(times, times[1:], strict=False)), times  # gaps of 0.2–0.4 s
        assert all(fake.refresh_count(a["refresh_token"]) == 1 for a in accts)
    finally:
        gw.server.stop()


def test_disabled_switch_leaves_tokens_to_request_time(fake, clean_fake, tmp_path):
    acct = fake.add_account()
    creds = [{"refreshToken": acct["refresh_token"], "authMethod": "social"}]
    gw = start_gateway(fake, tmp_path, creds, background_refresh=False, **FAST)
    try:
        time.sleep(0.4)
        assert fake.refresh_count(acct["refresh_token"]) == 0
        assert gw.app.state.refresher._task is None
    finally:
        gw.server.stop()
