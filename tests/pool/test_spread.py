"""Against bans: `random` spreads evenly, a new account ramps up under `balanced` instead of taking
all traffic, a client key can be pinned to one account, and an account's requests keep a jittered
minimum interval."""

from __future__ import annotations

import json
import time
from collections import Counter

import anthropic
import httpx
import pytest

from kiro_gateway.config import Settings
from kiro_gateway.kiro.client import KiroHttp
from kiro_gateway.pool.interval import MinInterval
from kiro_gateway.pool.pool import CredentialPool
from kiro_gateway.fake.server import FakeKiro
from support import start_gateway

ADMIN = "admin-key-for-spread"


@pytest.fixture(scope="module")
def fake():
    with FakeKiro() as f:
        yield f


def creds_of(accts):
    return [{"refreshToken": a["refresh_token"], "accessToken": a["access_token"], "expiresAt": a["expires_at"],
             "authMethod": "social"} for a in accts]


def served(fake) -> Counter:
    return Counter(r.get("account") for r in fake.requests if r["path"].endswith("generateAssistantResponse"))


def ask(client, i):
    client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": f"q{i}"}])


def test_random_spreads_1000_requests_over_5_accounts(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps([{"refreshToken": f"r{i}" * 10} for i in range(5)]))
    pool = CredentialPool(Settings(load_balancing="random"), path, KiroHttp())
    counts = Counter(pool.pick("claude-sonnet-4.6").id for _ in range(1000))
    assert len(counts) == 5
    assert all(170 <= n <= 230 for n in counts.values()), counts  # 200 ± 15 %
    # Not a rotation in disguise: the order of each round of five differs.
    rounds = {tuple(pool.pick().id for _ in range(5)) for _ in range(40)}
    assert len(rounds) > 10


def test_random_through_the_gateway(fake, tmp_path):
    accts = [fake.add_account() for _ in range(5)]
    gw = start_gateway(fake, tmp_path, creds_of(accts), load_balancing="random", usage_on_start=False)
    fake.clear_requests()
    try:
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        for i in range(100):
            ask(client, i)
    finally:
        gw.server.stop()
    counts = served(fake)
    assert set(counts) == {a["id"] for a in accts} and max(counts.values()) < 45


def test_balanced_new_account_takes_no_more_than_its_share(fake, tmp_path):
    old = [fake.add_account() for _ in range(4)]
    gw = start_gateway(fake, tmp_path, creds_of(old), load_balancing="balanced", usage_on_start=False,
                       admin_api_key=ADMIN, sticky_seconds=0)
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    try:
        for i in range(120):  # the old accounts have served 30 each
            ask(client, i)
        new = fake.add_account()
        r = httpx.post(gw.base_url + "/api/admin/credentials", headers={"x-api-key": ADMIN},
                       json={"refreshToken": new["refresh_token"], "authMethod": "social"}, timeout=30)
        assert r.status_code in (200, 201), r.text
        fake.clear_requests()
        for i in range(100):
            ask(client, 1000 + i)
    finally:
        gw.server.stop()
    counts = served(fake)
    assert counts[new["id"]] <= 100 / 5 + 2, counts  # its share of five (a least-used pick would take all)
    assert counts[new["id"]] >= 10  # but it does take part


def test_a_pinned_key_uses_only_its_account(fake, tmp_path):
    accts = [fake.add_account() for _ in range(3)]
    gw = start_gateway(fake, tmp_path, creds_of(accts), load_balancing="round_robin", usage_on_start=False,
                       admin_api_key=ADMIN)
    try:
        pool = gw.app.state.gateway.pool
        target = pool.credentials[2].id
        r = httpx.post(gw.base_url + "/api/admin/keys", headers={"x-api-key": ADMIN},
                       json={"name": "pinned", "credential": target})
        assert r.status_code == 201 and r.json()["credential"] == target, r.text
        pinned = anthropic.Anthropic(base_url=gw.base_url, api_key=r.json()["key"], max_retries=0)
        bad = httpx.post(gw.base_url + "/api/admin/keys", headers={"x-api-key": ADMIN},
                         json={"name": "nowhere", "credential": "99"})
        assert bad.status_code == 400
        fake.clear_requests()
        for i in range(6):
            ask(pinned, i)
    finally:
        gw.server.stop()
    assert served(fake) == Counter({accts[2]["id"]: 6})


async def test_min_interval_with_jitter():
    from kiro_gateway.state.local import LocalCoordination
    s = Settings(min_interval_per_credential=2.0, pacing_jitter=0.5)
    iv = MinInterval(s, LocalCoordination())  # type: ignore[arg-type]
    assert await iv.delay("a") == 0.0
    waits = [await iv.delay("a") for _ in range(50)]  # 50 more at once: spaced 2–3 s apart
    gaps = [b - a for a, b in zip([0.0] + waits, waits)]
    assert all(1.99 <= g <= 3.0 for g in gaps) and len({round(g, 3) for g in gaps}) > 10
    assert await iv.delay("b") == 0.0  # per account
    s.min_interval_per_credential = 0
    assert await iv.delay("a") == 0.0


def test_min_interval_through_the_gateway(fake, tmp_path):
    acct = fake.add_account()
    gw = start_gateway(fake, tmp_path, creds_of([acct]), min_interval_per_credential=0.3, pacing_jitter=0.2,
                       usage_on_start=False)
    try:
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        t0 = time.monotonic()
        for i in range(4):
            ask(client, i)
        took = time.monotonic() - t0
    finally:
        gw.server.stop()
    assert took >= 0.9  # three gaps of at least 0.3 s
