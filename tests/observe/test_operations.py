"""Running it as a service: /ready, JSON log lines, process metrics, graceful shutdown."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import orjson

from gateway_proc import GatewayProcess, write_config
from support import API_KEY, start_gateway


def test_ready_is_503_until_a_credential_is_added(fake, tmp_path):
    gw = start_gateway(fake, tmp_path, credentials=[], hot_reload=True, usage_on_start=False)
    try:
        r = httpx.get(gw.base_url + "/ready")
        assert r.status_code == 503 and r.json()["problems"] == ["no usable credential"]
        assert httpx.get(gw.base_url + "/health").status_code == 200  # alive all the same
        acct = fake.add_account()
        gw.credentials_path.write_bytes(orjson.dumps([{"refreshToken": acct["refresh_token"], "authMethod": "social"}]))
        deadline = time.time() + 10
        while (r := httpx.get(gw.base_url + "/ready")).status_code != 200:
            assert time.time() < deadline, r.text
            time.sleep(0.1)
        assert r.json() == {"ready": True, "credentials": 1, "store": "ok", "problems": []}
    finally:
        gw.server.stop()


def test_ready_is_503_when_the_store_is_unreachable(fake, tmp_path):
    gw = start_gateway(fake, tmp_path, usage_on_start=False)
    try:
        assert httpx.get(gw.base_url + "/ready").status_code == 200

        async def broken() -> dict:
            raise ConnectionError("gone")

        store = gw.app.state.gateway.store
        store.totals, saved = broken, store.totals
        r = httpx.get(gw.base_url + "/ready")
        store.totals = saved
        assert r.status_code == 503 and r.json()["problems"] == ["state store unreachable (ConnectionError)"]
    finally:
        gw.server.stop()


def test_metrics_carry_the_standard_process_families(gateway):
    text = httpx.get(gateway.base_url + "/metrics").text
    for family in ("process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
                   "python_info", "python_gc_objects_collected_total"):
        assert family in text, family


def test_json_log_lines_carry_request_and_credential_and_no_secret(tmp_path, clean_fake):
    acct = clean_fake.add_account()
    cfg = write_config(tmp_path / "gw", clean_fake, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                       logFormat="json", logLevel="debug")
    gw = GatewayProcess(cfg).wait_up()
    try:
        r = httpx.post(gw.url + "/v1/messages", headers={"x-api-key": API_KEY}, timeout=20,
                       json={"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        rows = gw.admin("GET", "/logs?limit=1").json()
    finally:
        gw.stop()
    text = gw.log.read_text()
    lines = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(ln) for ln in lines)
    in_request = [ln for ln in lines if "requestId" in ln]
    assert in_request, text[-2000:]
    assert any(ln.get("credential") for ln in in_request)
    row_ids = {row["id"] for row in rows["items"]}
    assert {ln["requestId"] for ln in in_request} & row_ids  # the same id as the request log row
    creds = json.loads((tmp_path / "gw" / "credentials.json").read_text())[0]
    for secret in (acct["refresh_token"], creds.get("accessToken"), creds.get("refreshToken"), API_KEY):
        assert secret and secret not in text


def test_sigterm_lets_an_open_stream_finish(tmp_path, clean_fake):
    acct = clean_fake.add_account()
    cfg = write_config(tmp_path / "gw", clean_fake, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}])
    clean_fake.add_script({"chunk_delay": 0.25, "steps": [{"text": "one two three four five six seven eight", "chunks": 8}]})
    gw = GatewayProcess(cfg).wait_up()
    got: list[str] = []
    body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    try:
        with httpx.stream("POST", gw.url + "/v1/messages", json=body, timeout=20,
                          headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}) as r:
            lines = r.iter_lines()
            for line in lines:
                got.append(line)
                if "content_block_delta" in line:
                    break
            threading.Timer(0, lambda: gw.proc.send_signal(signal.SIGTERM)).start()
            got.extend(lines)
        assert gw.proc.wait(15) is not None
    finally:
        gw.stop()
    text = "".join(json.loads(ln[6:]).get("delta", {}).get("text", "") for ln in got if ln.startswith("data: "))
    assert any("message_stop" in ln for ln in got) and text == "one two three four five six seven eight"
    assert "Shutting down" in gw.log.read_text()


def test_preflight_is_refused_while_cors_is_off(gateway):
    assert not gateway.settings.cors_origins
    pre = httpx.options(gateway.base_url + "/v1/messages", timeout=10, headers={
        "origin": "https://chat.example", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-api-key"})
    assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers


DEPLOY = __import__("pathlib").Path(__file__).resolve().parents[2] / "deploy"


def test_the_dashboard_charts_only_metrics_the_gateway_exports(gateway, client):
    import re

    client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    def family(name: str) -> str:
        return re.sub(r"_(total|bucket|sum|count)$", "", name)

    exported = {family(ln.split()[2]) for ln in httpx.get(gateway.base_url + "/metrics").text.splitlines()
                if ln.startswith("# TYPE ")}
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    used = {m for p in dash["panels"] for t in p["targets"]
            for m in map(family, re.findall(r"\b((?:kiro_gateway|process)_[a-z_]+)", t["expr"]))}
    assert len(used) > 10 and used <= exported, used - exported


def test_the_systemd_unit_is_hardened():
    unit = (DEPLOY / "kiro-gateway.service").read_text()
    settings = dict(ln.split("=", 1) for ln in unit.splitlines() if "=" in ln and not ln.startswith("#"))
    assert settings["User"] == "kiro-gateway" and settings["ProtectSystem"] == "strict"
    assert settings["StateDirectory"] == "kiro-gateway" and settings["NoNewPrivileges"] == "yes"
    assert settings["CapabilityBoundingSet"] == "" and "--init" in settings["ExecStart"]
