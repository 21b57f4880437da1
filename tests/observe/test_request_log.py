"""The request log, /metrics and /stats, through the official SDKs against the fake Kiro."""

from __future__ import annotations

import base64
import json
from collections import Counter

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request

from kiro_gateway.observe.metrics import metrics_allowed
from support import start_gateway

ADMIN = "admin-key-for-log-tests"
MODEL = "claude-sonnet-4-6"


@pytest.fixture
def traffic(fake, clean_fake, tmp_path):
    """A gateway on two accounts, after a mix of requests: streamed and not, three dialects, a failover, errors."""
    a, b = fake.add_account(), fake.add_account()
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
              "authMethod": "social", "priority": i} for i, x in enumerate((a, b))]
    gw = start_gateway(fake, tmp_path, creds, admin_api_key=ADMIN, usage_on_start=False, cooldown_seconds=300)
    ac = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    oc = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0)
    for i in range(3):
        ac.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": f"plain {i}"}])
    with ac.messages.stream(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "streamed"}]) as s:
        s.get_final_message()
    oc.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "from openai"}])
    with pytest.raises(anthropic.BadRequestError):
        ac.messages.create(model="gpt-nonsense", max_tokens=20, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=gw.base_url, api_key="wrong", max_retries=0).messages.create(
            model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "x"}])
    fake.add_script({"token": a["access_token"], "status": 429, "body": {"message": "Too many requests"}})
    ac.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "fails over"}])
    admin = httpx.Client(base_url=gw.base_url + "/api/admin", headers={"x-api-key": ADMIN}, timeout=10)
    yield gw, admin, a, b
    admin.close()
    gw.server.stop()


def test_every_request_is_logged_with_its_details(traffic):
    gw, admin, a, b = traffic
    page = admin.get("/logs", params={"limit": 100}).json()
    assert page["total"] == 8
    items = page["items"]
    assert Counter(i["status"] for i in items) == {200: 6, 400: 1, 401: 1}
    failover = items[0]
    assert failover["retries"] == 1 and failover["credential"] == "2" and failover["status"] == 200
    streamed = next(i for i in items if i["stream"])
    assert streamed["dialect"] == "anthropic" and streamed["tokensOut"] > 0 and streamed["credits"] == 0.01
    chat = next(i for i in items if i["dialect"] == "openai_chat")
    assert chat["userAgent"].startswith("OpenAI/Python") and chat["key"] == "default"
    assert chat["model"] == MODEL and chat["kiroModel"] == "claude-sonnet-4.6"
    ok = [i for i in items if i["status"] == 200]
    assert all(i["ttfbMs"] is not None and i["totalMs"] >= i["ttfbMs"] and i["tokensIn"] > 0 for i in ok)
    bad = next(i for i in items if i["status"] == 400)
    assert bad["error"] == "invalid_request" and bad["credential"] is None and bad["model"] == "gpt-nonsense"
    assert "requestBody" not in bad  # bodies are off by default
    denied = next(i for i in items if i["status"] == 401)
    assert denied["key"] is None and denied["error"] == "authentication"


def test_filters_paging_export_and_bad_queries(traffic):
    gw, admin, a, b = traffic
    get = lambda **p: admin.get("/logs", params=p).json()  # noqa: E731
    assert get(status="4xx")["total"] == 2 and get(status="error")["total"] == 2 and get(status="200")["total"] == 6
    assert get(credential="2")["total"] == 1 and get(model="gpt-nonsense")["total"] == 1
    assert get(q="openai/python")["total"] == 1 and get(q="not a claude")["total"] == 1
    first, second = get(limit=3), get(limit=3, offset=3)
    assert first["total"] == 8 and len(first["items"]) == 3
    assert {i["id"] for i in first["items"]}.isdisjoint(i["id"] for i in second["items"])
    newest = first["items"][0]["time"]
    assert get(since=newest)["total"] == 1 and get(until=newest - 0.0001)["total"] == 7
    r = admin.get("/logs/export", params={"status": "ok"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 6 and all(x["status"] == 200 for x in lines)
    for params in ({"limit": "x"}, {"limit": 0}, {"limit": 5000}, {"offset": -1}, {"status": "teapot"},
                   {"since": "yesterday"}):
        r = admin.get("/logs", params=params)
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request", params
    assert admin.get("/stats", params={"hours": 99}).status_code == 400
    assert httpx.get(gw.base_url + "/api/admin/logs").status_code == 401


def test_metrics_parse_and_match_the_log(traffic):
    gw, admin, a, b = traffic
    r = httpx.get(gw.base_url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    by_status: Counter = Counter()
    by_cred: Counter = Counter()
    for s in families["kiro_gateway_requests"].samples:
        assert s.name == "kiro_gateway_requests_total"
        by_status[int(s.labels["status"])] += s.value
        by_cred[s.labels["credential"]] += s.value
    items = admin.get("/logs").json()["items"]
    assert by_status == Counter(i["status"] for i in items)
    assert by_cred == Counter(i["credential"] or "-" for i in items)
    tokens = {d: sum(s.value for s in families["kiro_gateway_tokens"].samples if s.labels["direction"] == d)
              for d in ("in", "out")}
    assert tokens == {"in": sum(i["tokensIn"] for i in items), "out": sum(i["tokensOut"] for i in items)}
    credits = sum(s.value for s in families["kiro_gateway_credits"].samples)
    assert credits == pytest.approx(sum(i["credits"] or 0 for i in items))
    counts = [s.value for s in families["kiro_gateway_request_duration_seconds"].samples if s.name.endswith("_count")]
    assert sum(counts) == len(items)
    retries = sum(s.value for s in families["kiro_gateway_retries"].samples)
    assert retries == sum(i["retries"] for i in items) == 1
    states = {s.labels["credential"]: s.labels["state"] for s in families["kiro_gateway_credential_state"].samples
              if s.value == 1}
    assert states == {"1": "cooldown", "2": "active"}
    for secret in (a["access_token"], a["refresh_token"], b["access_token"], gw.api_key, ADMIN):
        assert secret not in r.text


def test_metrics_need_loopback_or_their_key():
    def req(host: str, headers: dict | None = None, query: bytes = b"") -> Request:
        raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        return Request({"type": "http", "client": (host, 4000), "headers": raw, "query_string": query})

    assert metrics_allowed(req("127.0.0.1"), None) and metrics_allowed(req("::1"), "k")
    assert not metrics_allowed(req("10.1.2.3"), None)
    assert not metrics_allowed(req("10.1.2.3"), "secret-key")
    assert not metrics_allowed(req("10.1.2.3", {"x-api-key": "wrong"}), "secret-key")
    assert metrics_allowed(req("10.1.2.3", {"authorization": "Bearer secret-key"}), "secret-key")
    assert metrics_allowed(req("10.1.2.3", {"x-api-key": "secret-key"}), "secret-key")
    assert metrics_allowed(req("10.1.2.3", query=b"key=secret-key"), "secret-key")


def test_stats_per_credential_model_dialect_with_burn_rate(traffic):
    gw, admin, a, b = traffic
    assert admin.get("/credentials/2/balance").status_code == 200  # usage limits known for #2 only
    stats = admin.get("/stats").json()
    assert stats["totals"]["requests"] == 8 and stats["totals"]["errors"] == 2
    assert stats["now"]["requests"] == 8 and stats["totals"]["latencyMs"]["p50"] > 0
    assert {d["dialect"]: d["requests"] for d in stats["byDialect"]} == {"anthropic": 7, "openai_chat": 1}
    assert {m["model"]: m["requests"] for m in stats["byModel"]} == {"-": 2, "claude-sonnet-4.6": 6}
    creds = {c["credential"]: c for c in stats["byCredential"]}
    assert creds["1"]["status"] == "cooldown" and creds["1"]["requests"] == 5 and creds["1"]["credits"] == 0.05
    burn = creds["2"]["burn"]
    assert burn["creditsPerHour"] == pytest.approx(0.01) and burn["remaining"] == 1000.0
    assert burn["runsOutAt"] and burn["resetsAt"] and creds["1"]["burn"]["remaining"] is None
    assert len(stats["trend"]) == 24 and stats["trend"][-1]["requests"] == 8
    assert sum(t["requests"] for t in admin.get("/stats", params={"hours": 1}).json()["trend"]) == 8


def test_bodies_when_asked_with_secrets_and_images_redacted(fake, clean_fake, tmp_path):
    acct = fake.add_account()
    gw = start_gateway(fake, tmp_path, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                       admin_api_key=ADMIN, log_bodies=True, usage_on_start=False)
    try:
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8).decode()
        secret = "sk-ant-api03-" + "Q" * 40
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
            {"type": "text", "text": f"my key is {secret} and the gateway's is {gw.api_key}"}]}])
        r = httpx.get(gw.base_url + "/api/admin/logs", headers={"x-api-key": ADMIN})
        entry = r.json()["items"][0]
        assert entry["requestBody"] is not None, entry
        content = entry["requestBody"]["messages"][0]["content"]
        assert content[0]["source"]["data"] == "[image redacted]"
        assert content[1]["text"] == "my key is [redacted] and the gateway's is [redacted]"
        assert entry["responseBody"]["content"][0]["text"].startswith("Hello from fake Kiro")
        for leaked in (png[:40], secret, gw.api_key, acct["refresh_token"]):
            assert leaked not in r.text
    finally:
        gw.server.stop()


def test_a_deeply_nested_body_with_log_bodies_keeps_the_state_writer_alive(fake, clean_fake, tmp_path):
    """One request nested past orjson's limit must not kill the writer: that request is still logged
    (its body cut at a depth), and a later cooldown still reaches the store."""
    from kiro_gateway.observe.redact import MAX_DEPTH, redact_body

    acct = fake.add_account()
    gw = start_gateway(fake, tmp_path, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                       admin_api_key=ADMIN, log_bodies=True, usage_on_start=False, state_flush_interval=0.05)
    try:
        deep: object = "x"
        for _ in range(300):
            deep = {"a": deep}
        body = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "deep"}],
                "metadata": {"user_id": "u"}, "extra": deep}
        httpx.post(gw.base_url + "/v1/messages", json=body, timeout=10,
                   headers={"x-api-key": gw.api_key, "anthropic-version": "2023-06-01"})
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "after"}])
        items = httpx.get(gw.base_url + "/api/admin/logs", headers={"x-api-key": ADMIN}, timeout=10).json()["items"]
        assert len(items) == 2, items  # both requests, the deep one included: the writer lived on
        assert gw.app.state.gateway.writer._task is not None and not gw.app.state.gateway.writer._task.done()
    finally:
        gw.server.stop()
    cut = redact_body(b'{"a":' * 900 + b'1' + b'}' * 900)
    assert cut is not None
    value, depth = cut, 0
    while isinstance(value, dict):
        value, depth = value["a"], depth + 1
    assert depth == MAX_DEPTH and "nested deeper" in value


def test_retention_runs_in_a_live_gateway(fake, clean_fake, tmp_path, monkeypatch):
    """The gateway wires its settings into the writer's pruning: with logRetentionCount 3, only the
    3 newest of 6 requests stay in the store."""
    import time

    from kiro_gateway.state import writer

    monkeypatch.setattr(writer, "_PRUNE_EVERY", 0.05)
    acct = fake.add_account()
    gw = start_gateway(fake, tmp_path, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                       admin_api_key=ADMIN, usage_on_start=False, state_flush_interval=0.05, log_retention_count=3)
    try:
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        for i in range(6):
            client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": f"n{i}"}])
        deadline = time.time() + 5
        while True:
            total = httpx.get(gw.base_url + "/api/admin/logs", headers={"x-api-key": ADMIN}, timeout=10).json()["total"]
            if total == 3 or time.time() > deadline:
                break
            time.sleep(0.05)
        assert total == 3
    finally:
        gw.server.stop()


def test_stats_give_the_time_to_first_token_as_a_percentile(fake, clean_fake, tmp_path):
    """The console's Overview shows TTFT p50: a histogram of first-byte times, not only an average."""
    from support import own_account, start_gateway

    gw = start_gateway(fake, tmp_path, own_account(fake), admin_api_key="adm-" + "k" * 20)
    try:
        fast = {"first_byte_delay": 0.0, "times": 8}
        clean_fake.add_script(fast)
        clean_fake.add_script({"first_byte_delay": 0.6, "times": 2})
        with httpx.Client(timeout=20) as c:
            for _ in range(10):
                r = c.post(gw.base_url + "/v1/messages", headers={"x-api-key": gw.api_key},
                           json={"model": "claude-sonnet-4-6", "max_tokens": 10, "stream": True,
                                 "messages": [{"role": "user", "content": "hi"}]})
                assert r.status_code == 200
            ttfb = c.get(gw.base_url + "/api/admin/stats", headers={"x-api-key": "adm-" + "k" * 20}).json()["totals"]["ttfbMs"]
        assert ttfb["p50"] is not None and ttfb["p50"] < 100 < ttfb["avg"], ttfb  # the median ignores the 2 slow ones
        assert ttfb["p90"] >= 500, ttfb
    finally:
        gw.server.stop()
