"""Secrets stay out of logs and answers; a gateway open beyond loopback without a key says so."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import anthropic
import httpx

from gateway_proc import ADMIN_KEY, write_config
from support import free_port, start_gateway
from test_cli import launch, stop, wait_health


def test_debug_access_log_hides_query_keys(fake, clean_fake, tmp_path):
    acct = fake.add_account()
    cfg = write_config(tmp_path, fake, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}])
    port = free_port()
    with open(tmp_path / "debug.log", "wb") as out:
        p = subprocess.Popen([sys.executable, "-m", "kiro_gateway.cli", "-c", str(cfg), "--port", str(port),
                              "--log-level", "debug"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_health(port, p)
        secret = json.loads(cfg.read_text())["apiKey"]
        r = httpx.post(f"http://127.0.0.1:{port}/v1beta/models/gemini-2.5-pro:generateContent?key={secret}&alt=x",
                       json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, timeout=10)
        assert r.status_code == 200, r.text
        time.sleep(0.3)
    finally:
        p.terminate()
        p.wait(10)
    log = (tmp_path / "debug.log").read_text()
    assert "generateContent?key=[redacted]" in log  # the access line is there, its key is not
    assert secret not in log


def test_bodies_log_redacts_the_pools_own_secrets(fake, clean_fake, tmp_path):
    acct = fake.add_account(auth="idc")
    proxy_password = "proxy-pass-" + "z" * 12
    creds = [{"refreshToken": acct["refresh_token"], "clientId": acct["client_id"],
              "clientSecret": acct["client_secret"], "authMethod": "idc"}]
    gw = start_gateway(fake, tmp_path, creds, admin_api_key=ADMIN_KEY, log_bodies=True, usage_on_start=False,
                       proxy_password=proxy_password)
    try:
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        prompt = f"secret {acct['client_secret']} and {proxy_password} and {acct['refresh_token']}"
        client.messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=[{"role": "user", "content": prompt}])
        r = httpx.get(gw.base_url + "/api/admin/logs", headers={"x-api-key": ADMIN_KEY}, timeout=10)
        assert r.json()["items"][0]["requestBody"] is not None
        for leaked in (acct["client_secret"], proxy_password, acct["refresh_token"]):
            assert leaked not in r.text
    finally:
        gw.server.stop()


def test_no_credential_503_does_not_name_server_paths(fake, tmp_path):
    gw = start_gateway(fake, tmp_path, [])
    try:
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        try:
            client.messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=[{"role": "user", "content": "x"}])
            raise AssertionError("expected 503")
        except anthropic.APIStatusError as e:
            assert e.status_code == 503
            assert str(tmp_path) not in e.response.text and "credentials.json" not in e.response.text
            assert "No usable Kiro credential" in e.response.text
    finally:
        gw.server.stop()


def test_open_bind_without_key_says_so_at_start(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / "config.json").write_text(json.dumps({"host": "0.0.0.0"}))
    port = free_port()
    proc = launch(["--port", str(port)], home, work)
    wait_health(port, proc)
    out = stop(proc)
    line = next(ln for ln in out.splitlines() if "without apiKey" in ln)
    assert "0.0.0.0" in line and "apiKey" in line and "未设置 apiKey" in line
    # and on loopback nothing of the kind
    (work / "config.json").write_text(json.dumps({"host": "127.0.0.1"}))
    proc = launch(["--port", str(port)], home, work)
    wait_health(port, proc)
    assert "without apiKey" not in stop(proc)
