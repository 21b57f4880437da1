"""`kiro-gateway status`: a table of a running gateway's credentials, usage and recent errors."""

from __future__ import annotations

import json

import anthropic
import pytest

from kiro_gateway.cli import main
from support import start_gateway

ADMIN = "admin-key-for-status-tests"


def test_status_shows_credentials_states_usage_and_errors(fake, clean_fake, tmp_path, capsys, monkeypatch):
    a, b = fake.add_account(email="alice@example.com"), fake.add_account()
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
              "authMethod": "social", "priority": i} for i, x in enumerate((a, b))]
    gw = start_gateway(fake, tmp_path, creds, admin_api_key=ADMIN, usage_on_start=False, cooldown_seconds=300)
    try:
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        fake.add_script({"token": a["access_token"], "status": 429, "body": {"message": "Too many requests"}})
        client.messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model="no-such-model", max_tokens=20, messages=[{"role": "user", "content": "x"}])

        assert main(["status", "--url", gw.base_url, "--admin-key", ADMIN]) == 0
        out = capsys.readouterr().out
        assert "#1" in out and "cooldown" in out and "#2" in out and "active" in out
        assert "Recent errors" in out and "no-such-model" in out and "invalid_request" in out
        for secret in (a["access_token"], a["refresh_token"], ADMIN):
            assert secret not in out

        # Defaults from config.json (host, port, adminApiKey); --json for scripts.
        (tmp_path / "config.json").write_text(json.dumps({"port": gw.server.port, "adminApiKey": ADMIN}))
        assert main(["status", "-c", str(tmp_path / "config.json"), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["credentials"]["total"] == 2 and data["stats"]["totals"]["requests"] == 2

        assert main(["status", "--url", gw.base_url, "--admin-key", "wrong"]) == 1
        assert "401" in capsys.readouterr().err
    finally:
        gw.server.stop()
    assert main(["status", "--url", gw.base_url, "--admin-key", ADMIN]) == 1  # nothing listens any more
    assert "cannot reach" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"port": gw.server.port}))
    assert main(["status"]) == 2 and "admin key" in capsys.readouterr().err
