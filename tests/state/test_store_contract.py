"""Both state stores honour one contract: SQLite (one process) and Redis (team mode)."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from kiro_gateway.state import make_store, parse_state_url
from kiro_gateway.state.base import AGG_SIZE, Batch, Events, HealthChange, LockTimeout, LogQuery, SessionSnapshot, \
    SessionStore, StateStore, TokenStore, agg_key


@pytest.fixture(params=["sqlite", "memory", "redis"])
async def store(request, tmp_path):
    if request.param == "sqlite":
        s = make_store(None, tmp_path)
    elif request.param == "memory":
        s = make_store("memory", None)
    else:
        url = request.getfixturevalue("redis_url")
        s = make_store(url, None, "t-" + secrets.token_hex(4))  # a namespace per test: no leftovers
    await s.open()
    yield s
    await s.close()


def row(i: int, **kw) -> dict:
    base = {"id": f"r{i}", "time": 1_000_000 + i, "dialect": "anthropic", "userAgent": "claude-cli/2.0",
            "key": "default", "model": "claude-sonnet-4-6", "kiroModel": "claude-sonnet-4.6", "credential": "1",
            "status": 200, "error": None, "errorMessage": None}
    return {**base, **kw}


async def test_health_counts_add_up_and_values_are_set(store):
    await store.write(Batch(health={"1": HealthChange({"success_count": 2}, {"cooldown_until": 123.5, "reason": "x"})}))
    await store.write(Batch(health={"1": HealthChange({"success_count": 3, "failure_count": 1}, {"reason": None})}))
    got = await store.load_health(["1", "2"])
    assert set(got) == {"1"}
    h = got["1"]
    assert h["success_count"] == 5 and h["failure_count"] == 1
    assert h["cooldown_until"] == 123.5 and h["reason"] is None
    await store.write(Batch(forget={"1"}))
    assert await store.load_health(["1"]) == {}


async def test_sessions_are_remembered_until_they_expire(store):
    now = time.time()
    await store.write(Batch(sticky={"s:live": ("2", now + 60), "s:old": ("1", now - 1)}))
    if isinstance(store, SessionStore):
        await store.sticky_put("s:new", "3", now + 60)
        assert (await store.sticky_get("s:live"))[0] == "2"
        assert (await store.sticky_get("s:new"))[0] == "3"
        assert await store.sticky_get("s:old") is None
    else:
        loaded = {s: c for s, c, _ in await store.load_sticky()}
        assert loaded == {"s:live": "2"}


async def test_lock_is_exclusive_and_times_out(store):
    order = []

    async def holder(name: str, hold: float):
        async with store.lock("refresh:1", ttl=5, wait=5):
            order.append(name + "+")
            await asyncio.sleep(hold)
            order.append(name + "-")

    await asyncio.gather(holder("a", 0.1), holder("b", 0.0))
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
    async with store.lock("refresh:2", ttl=5, wait=1):
        with pytest.raises(LockTimeout):
            async with store.lock("refresh:2", ttl=5, wait=0.1):
                pass


async def test_a_dead_holders_lock_expires(store):
    if not store.shared:
        pytest.skip("one process: a holder cannot die without releasing")
    cm = store.lock("refresh:9", ttl=0.3, wait=1)
    await cm.__aenter__()  # and never __aexit__: the holder "died"
    started = time.monotonic()
    async with store.lock("refresh:9", ttl=5, wait=2):
        assert 0.15 < time.monotonic() - started < 1.5


async def test_slots_cap_release_and_expiry(store):
    assert await store.acquire_slot("cred:1", "a", 2, 30)
    assert await store.acquire_slot("cred:1", "b", 2, 30)
    assert not await store.acquire_slot("cred:1", "c", 2, 30)
    assert await store.acquire_slot("cred:2", "c", 2, 30)  # another credential's slots are its own
    store.release_slot("cred:1", "a")
    await asyncio.sleep(0.05)  # Redis releases in the background
    assert await store.acquire_slot("cred:1", "c", 2, 30)
    assert await store.acquire_slot("cred:3", "x", 1, 0.2)
    await store.renew_slots([("cred:3", "x")], 0.2)
    assert not await store.acquire_slot("cred:3", "y", 1, 0.2)
    await asyncio.sleep(0.3)  # not renewed again: its holder is gone
    assert await store.acquire_slot("cred:3", "y", 1, 0.2)


async def test_rate_window_admits_cap_then_says_how_long_to_wait(store):
    for _ in range(3):
        assert await store.take_rate("key:k", 3, 0.5) == 0
    wait = await store.take_rate("key:k", 3, 0.5)
    assert 0 < wait <= 0.5
    await asyncio.sleep(wait + 0.05)
    assert await store.take_rate("key:k", 3, 0.5) == 0


async def test_starts_are_spaced_by_the_gap_asked_for(store):
    waits = [await store.reserve_start("cred:1", 0.2) for _ in range(4)]
    assert waits[0] == 0 and all(abs(w - 0.2 * i) < 0.05 for i, w in enumerate(waits)), waits
    assert await store.reserve_start("cred:2", 0.2) == 0  # per scope
    await asyncio.sleep(1.0)  # the last reservation (0.6 s ahead, 0.2 s gap) is past
    assert await store.reserve_start("cred:1", 0.2) == 0


async def test_two_processes_sharing_redis_keep_one_interval(redis_url):
    # Two gateways on one Redis (team mode): their reservations on one account interleave and
    # every start is still a gap after the one before it.
    from kiro_gateway.config import Settings
    from kiro_gateway.pool.interval import MinInterval
    ns = "t-" + secrets.token_hex(4)
    stores = [make_store(redis_url, None, ns) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        settings = Settings(min_interval_per_credential=0.1, pacing_jitter=0)
        a, b = (MinInterval(settings, s) for s in stores)
        t0 = time.monotonic()
        starts = sorted(await asyncio.gather(*(iv.delay("1") for iv in (a, b) * 4)))
        assert time.monotonic() - t0 < 0.5  # reserved, not waited for
        assert all(abs(w - 0.1 * i) < 0.03 for i, w in enumerate(starts)), starts
    finally:
        for s in stores:
            await s.close()


async def test_log_filters_paging_and_retention(store):
    rows = [row(i) for i in range(20)]
    rows[3].update(status=429, error="rate_limit", credential="2")
    rows[7].update(status=502, error="upstream", errorMessage="Kiro stream broke off")
    rows[9].update(model="gpt-4o", kiroModel="claude-sonnet-4.5", key="alice", userAgent="OpenAI/Python")
    await store.write(Batch(logs=rows))
    q = store.query_logs
    items, total = await q(LogQuery(limit=5))
    assert total == 20 and [r["id"] for r in items] == ["r19", "r18", "r17", "r16", "r15"]
    items, total = await q(LogQuery(limit=5, offset=18))
    assert total == 20 and [r["id"] for r in items] == ["r1", "r0"]
    assert [r["id"] for r in (await q(LogQuery(status="429")))[0]] == ["r3"]
    assert [r["id"] for r in (await q(LogQuery(status="error")))[0]] == ["r7", "r3"]
    assert [r["id"] for r in (await q(LogQuery(status="5xx")))[0]] == ["r7"]
    assert (await q(LogQuery(status="ok")))[1] == 18
    assert [r["id"] for r in (await q(LogQuery(model="claude-sonnet-4.5")))[0]] == ["r9"]
    assert [r["id"] for r in (await q(LogQuery(model="gpt-4o")))[0]] == ["r9"]
    assert [r["id"] for r in (await q(LogQuery(credential="2")))[0]] == ["r3"]
    assert [r["id"] for r in (await q(LogQuery(key="alice")))[0]] == ["r9"]
    assert [r["id"] for r in (await q(LogQuery(text="BROKE off")))[0]] == ["r7"]
    assert [r["id"] for r in (await q(LogQuery(text="openai/")))[0]] == ["r9"]
    assert [r["id"] for r in (await q(LogQuery(text="100%")))[0]] == []  # LIKE wildcards are literal
    got = (await q(LogQuery(since=1_000_005, until=1_000_007)))[0]
    assert [r["id"] for r in got] == ["r7", "r6", "r5"]
    assert got[0] == rows[7]  # a row comes back as it went in
    await store.prune(10, 0)
    items, total = await q(LogQuery(limit=100))
    assert total == 10 and items[-1]["id"] == "r10"
    await store.write(Batch(logs=[row(100, time=time.time())]))
    await store.prune(0, 3600)  # by age: the 1970s rows go
    assert [r["id"] for r in (await q(LogQuery()))[0]] == ["r100"]


async def test_aggregates_add_per_bucket_and_in_total(store):
    k = agg_key("anthropic", "claude-sonnet-4.6", "1", 200)
    vec = [1.0] + [0.0] * (AGG_SIZE - 1)
    now = int(time.time()) // 300 * 300
    await store.write(Batch(aggregates={(now, k): vec, (0, k): vec}))
    await store.write(Batch(aggregates={(now, k): vec, (now - 3000, k): vec, (0, k): [2.0] + [0.0] * (AGG_SIZE - 1)}))
    recent = await store.aggregates(now - 600)
    assert recent == {(now, k): [2.0] + [0.0] * (AGG_SIZE - 1)}
    assert len(await store.aggregates(now - 3600)) == 2
    assert (await store.totals())[k][0] == 3.0


async def test_keys_and_their_usage(store):
    await store.save_key({"id": "k1", "name": "alice", "hash": "h1"})
    await store.save_key({"id": "k2", "name": "bob", "hash": "h2"})
    await store.save_key({"id": "k1", "name": "alice2", "hash": "h1"})
    assert sorted(k["name"] for k in await store.list_keys()) == ["alice2", "bob"]
    assert await store.delete_key("k2") and not await store.delete_key("k2")
    await store.write(Batch(key_usage={("k1", "2030-01-01"): [1, 10, 20, 0.5, 0]}))
    await store.write(Batch(key_usage={("k1", "2030-01-01"): [1, 5, 5, 0.25, 1]}))
    assert await store.key_usage("2030-01-01") == {"k1": [2, 15, 25, 0.75, 1]}
    assert await store.key_usage("2030-01-02") == {}


def test_a_store_offers_exactly_what_it_supports(store):
    assert isinstance(store, StateStore)
    shared = (SessionStore, TokenStore, Events)
    # One process: its memory knows every binding, the credentials file holds the tokens, and nobody
    # listens; a shared store instead reads bindings through rather than copying them at start-up.
    assert all(isinstance(store, p) == store.shared for p in shared)
    assert isinstance(store, SessionSnapshot) != store.shared


def test_state_urls_are_read_in_one_place(tmp_path):
    assert parse_state_url(None).backend == parse_state_url("  ").backend == "default"
    assert parse_state_url("redis://h:1/0").shared and parse_state_url("unix:///r.sock").backend == "redis"
    assert parse_state_url(":memory:").backend == parse_state_url("memory").backend == "memory"
    assert parse_state_url(f"sqlite:///{tmp_path}/s.db").path == tmp_path / "s.db"
    for bad in ("postgres://x", "sqlite:///", "memoryx"):
        with pytest.raises(ValueError, match="stateUrl must be"):
            parse_state_url(bad)
    with pytest.raises(ValueError, match="stateUrl must be"):
        make_store("mysql://u:secret@h", None)


async def test_shared_tokens_and_change_notices(store):
    if not isinstance(store, TokenStore) or not isinstance(store, Events):
        return
    seen = []
    store.subscribe(lambda topic, data: seen.append((topic, data)))
    await store.put_tokens("1", {"accessToken": "a", "expiresAt": "2030-01-01T00:00:00Z", "profileArn": None})
    assert await store.get_tokens("1") == {"accessToken": "a", "expiresAt": "2030-01-01T00:00:00Z"}
    await store.write(Batch(health={"4": HealthChange({"failure_count": 1}, {"cooldown_until": 5.0})}))
    for _ in range(100):
        if ("health", ["4"]) in seen and ("tokens", "1") in seen:
            break
        await asyncio.sleep(0.01)
    assert ("tokens", "1") in seen and ("health", ["4"]) in seen


class _Logs:
    """A writer source handing over log rows, or failing on demand."""

    def __init__(self, rows: list[dict], fail: bool = False) -> None:
        self.rows, self.fail = rows, fail

    def collect(self, batch: Batch) -> None:
        if self.fail:
            raise TypeError("a record that cannot be shaped")
        batch.logs.extend(self.rows)
        self.rows = []

    def done(self, batch: Batch, ok: bool) -> None:
        pass

    async def after(self) -> None:
        return None


async def test_the_writer_applies_retention_and_outlives_a_failing_source(store):
    from kiro_gateway.state.writer import StateWriter
    from kiro_gateway.util.tasks import ERRORS

    limits = {"count": 5}
    writer = StateWriter(store, 60, lambda: (limits["count"], 0.0))
    bad = _Logs([], fail=True)
    writer.add(bad)
    writer.add(_Logs([row(i) for i in range(20)]))
    writer.start()
    try:
        before = ERRORS["state-writer.collect._Logs"]
        await writer.flush()  # one source fails: the other's rows are still written
        assert ERRORS["state-writer.collect._Logs"] == before + 1
        assert len((await store.query_logs(LogQuery(limit=100)))[0]) == 20
        await writer.prune()
        assert len((await store.query_logs(LogQuery(limit=100)))[0]) == 5
        limits["count"] = 2  # a config reload changes retention: the next prune follows it
        await writer.prune()
        assert len((await store.query_logs(LogQuery(limit=100)))[0]) == 2
        assert not writer._task.done()
    finally:
        await writer.stop()


async def test_account_facts_are_kept_per_credential(store, tmp_path):
    assert await store.get_account_facts("c1") is None
    facts = {"endpoint": "legacy", "profileArn": None, "models": {"glm-5": [200000, 32000]}}
    await store.put_account_facts("c1", facts)
    await store.put_account_facts("c2", {"endpoint": "runtime"})
    assert await store.get_account_facts("c1") == facts
    await store.put_account_facts("c1", {"endpoint": "runtime"})
    assert await store.get_account_facts("c1") == {"endpoint": "runtime"}


async def test_stored_responses_keep_their_owner_expire_are_touched_and_deleted(store):
    now = time.time()
    await store.put_response("resp_a", "key:1", b'{"parent": null}', now + 60)
    await store.put_response("resp_old", "key:1", b"{}", now + 0.3)
    assert await store.get_response("resp_a") == ("key:1", b'{"parent": null}')
    await store.touch_responses(["resp_old"], now + 60)  # a continued exchange keeps its ancestors
    await asyncio.sleep(0.5)
    assert (await store.get_response("resp_old"))[0] == "key:1"
    await store.put_response("resp_gone", "default", b"{}", now + 0.2)
    await asyncio.sleep(0.4)
    assert await store.get_response("resp_gone") is None
    assert await store.delete_response("resp_a") is True
    assert await store.get_response("resp_a") is None and await store.delete_response("resp_a") is False
