"""Kiro's "suspicious activity" is an alert: counted on /metrics per credential and reason, and its
text shown as the credential's reason in the admin view while the account rests."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kiro_gateway.fake.server import FakeKiro
from support import start_gateway

ADMIN = "admin-key-for-alert-tests"


def test_suspicious_activity_raises_an_alert(tmp_path):
    with FakeKiro() as fake:
        acct = fake.add_account()
        fake.add_script({"account": acct["id"], "error": "SUSPICIOUS_ACTIVITY", "times": 1})
        gw = start_gateway(fake, tmp_path, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                           admin_api_key=ADMIN, usage_on_start=False, background_refresh=False)
        try:
            r = httpx.post(gw.base_url + "/v1/messages", headers={"x-api-key": gw.api_key}, timeout=30, json={
                "model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]})
            assert r.status_code == 429, r.text
            (cid,) = [c.id for c in gw.app.state.gateway.pool.credentials]
            text = httpx.get(gw.base_url + "/metrics").text
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            samples = [s for s in fams["kiro_gateway_account_alerts"].samples if s.name.endswith("_total")]
            assert [(s.labels["credential"], s.labels["reason"], s.value) for s in samples] == \
                [(str(cid), "SUSPICIOUS_ACTIVITY", 1.0)]
            listed = httpx.get(gw.base_url + "/api/admin/credentials", headers={"x-api-key": ADMIN}).json()
            (view,) = listed["credentials"]
            assert view["status"] == "cooldown"
            assert "suspicious activity" in (view["reason"] or "")
        finally:
            gw.server.stop()
