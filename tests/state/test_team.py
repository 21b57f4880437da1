"""Team mode: three gateway processes on one Redis share refreshes, cooldowns and sessions."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import httpx
import pytest

from gateway_proc import GatewayProcess, start_all, stop_all, write_config
from support import API_KEY

MODEL = "claude-sonnet-4-6"
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture
def team(fake, clean_fake, tmp_path, redis_url):
    """start(credentials, **config) → three gateways sharing one directory and one Redis namespace."""
    procs: list[GatewayProcess] = []

    def start(creds, **config) -> list[GatewayProcess]:
        path = write_config(tmp_path, fake, creds, stateUrl=redis_url, stateNamespace="t" + secrets.token_hex(4),
                            **config)
        procs.extend(start_all([path] * 3))
        return procs

    yield start
    stop_all(procs)


def served_by(fake) -> list[str]:
    return [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"]


def ask(url: str, text: str, session: str | None = None) -> httpx.Response:
    body = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": text}]}
    if session:
        body["metadata"] = {"user_id": f"user_x_account__session_{session}"}
    r = httpx.post(url + "/v1/messages", json=body, headers=HEADERS, timeout=30)
    assert r.status_code == 200, r.text
    return r


def test_300_concurrent_requests_over_three_processes_refresh_an_expired_token_once(fake, team, tmp_path):
    acct = fake.add_account()
    creds = [{"refreshToken": acct["refresh_token"], "accessToken": "stale", "expiresAt": "2020-01-01T00:00:00Z",
              "authMethod": "social", "note": "keep me"}]
    gws = team(creds, backgroundRefresh=False)

    async def burst() -> list[int]:
        # aiohttp rather than httpx: 300 at once through httpx costs seconds of client CPU alone.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=400)) as client:
            async def one(i: int) -> int:
                body = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": f"n{i}"}]}
                async with client.post(gws[i % 3].url + "/v1/messages", json=body, headers=HEADERS) as r:
                    await r.read()
                    return r.status
            return await asyncio.gather(*[one(i) for i in range(300)])

    statuses = asyncio.run(burst())
    assert statuses == [200] * 300
    assert fake.refresh_count(acct["refresh_token"]) == 1
    fresh = fake.account(acct["id"])["access_token"]
    assert set(served_by(fake)) == {fresh}  # no process went on with a stale token
    stored = json.loads((tmp_path / "credentials.json").read_text())
    assert isinstance(stored, list) and stored[0]["accessToken"] == fresh and stored[0]["note"] == "keep me"


def test_a_cooldown_set_by_one_process_is_honoured_by_the_others(fake, team):
    a, b = fake.add_account(), fake.add_account()
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
              "authMethod": "social", "priority": i} for i, x in enumerate((a, b))]
    p1, p2, p3 = team(creds, cooldownSeconds=300)
    for p in (p1, p2, p3):
        p.admin("GET", "/logs")  # each has done its start-up reload: what follows must travel by Redis
    fake.add_script({"token": a["access_token"], "status": 429, "body": {"message": "Too many requests"}})
    ask(p1.url, "throttled on A, served by B")
    assert served_by(fake)[-2:] == [a["access_token"], b["access_token"]]
    for p in (p2, p3):  # the cooldown reaches the others through Redis within moments
        deadline = time.time() + 3
        while p.admin("GET", "/credentials").json()["credentials"][0]["status"] != "cooldown":
            assert time.time() < deadline, "cooldown not seen by another process"
            time.sleep(0.02)
    for p in (p2, p3, p2, p3):
        ask(p.url, f"while A cools, on {p.port}")
        assert served_by(fake)[-1] == b["access_token"]  # priority alone would pick A
    counts = [c["failureCount"] for c in p3.admin("GET", "/credentials").json()["credentials"]]
    assert counts == [1, 0]


def test_a_session_stays_on_one_credential_whichever_process_serves_it(fake, team):
    accts = [fake.add_account() for _ in range(2)]
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
              "authMethod": "social"} for x in accts]
    gws = team(creds, loadBalancing="round_robin", stickySeconds=120)
    sessions = [f"{secrets.token_hex(8)}-{i:04d}-4000-8000" for i in range(4)]
    seen: dict[str, list[str]] = {s: [] for s in sessions}
    for turn in range(3):
        for i, s in enumerate(sessions):  # each turn of a session goes to another process
            ask(gws[(i + turn) % 3].url, f"session {i} turn {turn}", s)
            seen[s].append(served_by(fake)[-1])
    assert all(len(set(tokens)) == 1 for tokens in seen.values()), seen
    assert len({tokens[0] for tokens in seen.values()}) == 2  # round robin spread the sessions over both
    # Write-back from three processes at once: each change lands, none is lost to a race.
    changes = [(gws[0], "/credentials/1/priority", {"priority": 5}), (gws[1], "/credentials/2/priority", {"priority": 7}),
               (gws[2], "/credentials/2/disabled", {"disabled": True})]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda c: c[0].admin("POST", c[1], json=c[2]).status_code, changes))
    assert results == [200, 200, 200]
    on_disk = json.loads((gws[0].config.parent / "credentials.json").read_text())
    assert [(c.get("priority", 0), c.get("disabled", False)) for c in on_disk] == [(5, False), (7, True)]
    for g in gws:  # and every process ends up with the file's view (hot reload)
        deadline = time.time() + 5
        while [(c["priority"], c["disabled"]) for c in g.admin("GET", "/credentials").json()["credentials"]] != \
                [(5, False), (7, True)]:
            assert time.time() < deadline, "a process kept an old view"
            time.sleep(0.05)
