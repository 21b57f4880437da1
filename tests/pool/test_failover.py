"""The pool through the official SDK, with the fake Kiro's fault injection."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time

import anthropic
import pytest

from support import start_gateway

MODEL = "claude-sonnet-4-6"
MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture
def two(fake, clean_fake, tmp_path):
    """A gateway on two fresh accounts, A (priority 0) and B (priority 1), tokens valid."""
    a = fake.add_account()
    b = fake.add_account()
    creds = [
        {"refreshToken": a["refresh_token"], "accessToken": a["access_token"], "expiresAt": a["expires_at"],
         "authMethod": "social", "priority": 0},
        {"refreshToken": b["refresh_token"], "accessToken": b["access_token"], "expiresAt": b["expires_at"],
         "authMethod": "social", "priority": 1},
    ]
    gw = start_gateway(fake, tmp_path, creds, cooldown_seconds=1.0)
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    yield gw, client, a, b
    gw.server.stop()


def served_by(fake) -> list[str]:
    return [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"]


def health(gw, index: int):
    pool = gw.app.state.gateway.pool
    cred = pool.credentials[index]
    return pool.status(cred), pool.health[cred.id]


def test_429_fails_over_and_a_cools_down_then_returns(two, fake):
    gw, client, a, b = two
    fake.add_script({"token": a["access_token"], "status": 429, "body": {"message": "Too many requests"}})
    msg = client.messages.create(model=MODEL, max_tokens=50, messages=MSG)
    assert msg.content[0].text.startswith("Hello from fake Kiro")
    assert served_by(fake)[-2:] == [a["access_token"], b["access_token"]]
    assert health(gw, 0)[0] == "cooldown"
    client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "while cooling"}])
    assert served_by(fake)[-1] == b["access_token"]
    time.sleep(1.1)
    client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "after"}])
    assert served_by(fake)[-1] == a["access_token"] and health(gw, 0)[0] == "active"


def test_402_quota_takes_a_out_until_reset(two, fake):
    gw, client, a, b = two
    fake.add_script({"token": a["access_token"], "status": 402,
                     "body": {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}})
    client.messages.create(model=MODEL, max_tokens=50, messages=MSG)
    status, h = health(gw, 0)
    assert status == "exhausted" and h.exhausted_until > time.time() + 86400 * 0.5
    client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "again"}])
    assert served_by(fake)[-1] == b["access_token"]


def test_bearer_invalid_forces_one_refresh_and_succeeds(two, fake):
    gw, client, a, b = two
    before = fake.refresh_count(a["refresh_token"])
    fake.add_script({"token": a["access_token"], "status": 403,
                     "body": {"message": "The bearer token included in the request is invalid."}})
    msg = client.messages.create(model=MODEL, max_tokens=50, messages=MSG)
    assert msg.content[0].type == "text"
    assert fake.refresh_count(a["refresh_token"]) == before + 1
    tokens = served_by(fake)[-2:]
    assert tokens[0] == a["access_token"] and tokens[1] != a["access_token"] and tokens[1] != b["access_token"]
    stored = json.loads(gw.credentials_path.read_text())
    assert stored[0]["accessToken"] == tokens[1]  # the new token was written back
    assert health(gw, 0)[0] == "active"


def test_403_suspension_marks_a_unhealthy(two, fake):
    gw, client, a, b = two
    fake.update_account(a["id"], suspended=True)
    try:
        client.messages.create(model=MODEL, max_tokens=50, messages=MSG)
        status, h = health(gw, 0)
        assert status == "unhealthy" and "suspended" in h.reason
        assert served_by(fake)[-1] == b["access_token"]
    finally:
        fake.update_account(a["id"], suspended=False)


def test_400_is_not_retried(two, fake):
    gw, client, a, b = two
    fake.add_script({"status": 400, "body": {"message": "Improperly formed request.", "reason": None}, "times": 5})
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=MODEL, max_tokens=50, messages=MSG)
    assert len(served_by(fake)) == 1


def test_first_token_timeout_fails_over(fake, clean_fake, tmp_path):
    a, b = fake.add_account(), fake.add_account()
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
              "priority": i} for i, x in enumerate((a, b))]
    gw = start_gateway(fake, tmp_path, creds, first_token_timeout=0.3)
    try:
        fake.add_script({"token": a["access_token"], "first_byte_delay": 2.0, "times": 3})
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        started = time.time()
        msg = client.messages.create(model=MODEL, max_tokens=50, messages=MSG)
        assert msg.content[0].text.startswith("Hello from fake Kiro")
        tokens = served_by(fake)
        assert tokens.count(a["access_token"]) == 1 and b["access_token"] in tokens
        assert time.time() - started < 1.5
    finally:
        gw.server.stop()


def test_expired_credential_is_refreshed_once_for_200_concurrent_requests(fake, clean_fake, tmp_path):
    acct = fake.add_account()
    # The file's own shape: a single object with an unknown field, already expired.
    creds = {"refreshToken": acct["refresh_token"], "accessToken": "stale", "expiresAt": "2020-01-01T00:00:00Z",
             "authMethod": "social", "note": "keep me"}
    gw = start_gateway(fake, tmp_path, creds)
    try:
        client = anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)

        async def burst():
            return await asyncio.gather(*[client.messages.create(
                model=MODEL, max_tokens=20, messages=[{"role": "user", "content": f"n{i}"}]) for i in range(200)])

        replies = asyncio.run(burst())
        assert len(replies) == 200 and all(r.content[0].text.startswith("Hello") for r in replies)
        assert fake.refresh_count(acct["refresh_token"]) == 1
        stored = json.loads(gw.credentials_path.read_text())
        assert isinstance(stored, dict) and stored["note"] == "keep me"
        assert stored["accessToken"] == fake.account(acct["id"])["access_token"] != "stale"
        assert stat.S_IMODE(os.stat(gw.credentials_path).st_mode) == 0o600
    finally:
        gw.server.stop()


def test_sessions_stick_to_their_credential_under_balanced(fake, clean_fake, tmp_path):
    accts = [fake.add_account() for _ in range(2)]
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"]}
             for x in accts]
    gw = start_gateway(fake, tmp_path, creds, load_balancing="balanced")
    try:
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        seen: dict[str, set[str]] = {"s1": set(), "s2": set()}
        for turn in range(6):
            for sid in ("s1", "s2"):
                meta = json.dumps({"device_id": "d", "account_uuid": "", "session_id": f"{sid}-session"})
                client.messages.create(model=MODEL, max_tokens=20, metadata={"user_id": meta},
                                       messages=[{"role": "user", "content": f"{sid} turn {turn}"}])
                seen[sid].add(served_by(fake)[-1])
        assert len(seen["s1"]) == 1 and len(seen["s2"]) == 1
        assert seen["s1"] != seen["s2"]  # balanced spread the two sessions over both accounts
    finally:
        gw.server.stop()
