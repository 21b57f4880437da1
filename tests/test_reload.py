"""Hot reload: hand edits of config.json and credentials.json, without a restart and without losing tokens."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import pytest

from kiro_gateway.app import create_app
from kiro_gateway.config import load_settings
from support import ServerThread

ADMIN = "admin-key-for-reload-tests"
MODEL = "claude-sonnet-4-6"


def wait_for(cond, timeout: float = 5.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.fixture
def live(fake, clean_fake, tmp_path):
    """A gateway started the way the CLI starts it: from config.json, with credentials.json beside it."""
    a, b = fake.add_account(), fake.add_account()
    config = {"apiKey": "key-one", "adminApiKey": ADMIN, "apiBaseUrl": fake.base_url, "authBaseUrl": fake.base_url,
              "oidcBaseUrl": fake.base_url, "usageOnStart": False, "backgroundRefresh": False}
    cfg, creds = tmp_path / "config.json", tmp_path / "credentials.json"
    cfg.write_text(json.dumps(config))
    creds.write_text(json.dumps([{"refreshToken": a["refresh_token"], "accessToken": a["access_token"],
                                  "expiresAt": a["expires_at"], "authMethod": "social"}], indent=2))
    server = ServerThread(create_app(load_settings(cfg, environ={}), creds, cfg)).start()
    admin = httpx.Client(base_url=server.base_url + "/api/admin", headers={"x-api-key": ADMIN}, timeout=10)
    yield server, cfg, creds, config, admin, a, b
    admin.close()
    server.stop()


def ask(server, key: str, model: str = MODEL) -> str:
    client = anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=0)
    return client.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}]).model


def test_config_edits_apply_without_restart(live):
    server, cfg, creds, config, admin, a, b = live
    ask(server, "key-one")
    gw = server.config.app.state.gateway
    assert gw.read_gate.budget == 32 * 2**20
    cfg.write_text(json.dumps({**config, "apiKey": "key-two", "modelMap": {"house-model": "claude-haiku-4.5"},
                               "port": 1, "pendingBodiesMb": 8}))
    assert wait_for(lambda: gw.settings.api_key == "key-two")
    assert gw.read_gate.budget == 8 * 2**20  # the read gate's budget follows the file
    with pytest.raises(anthropic.AuthenticationError):
        ask(server, "key-one")
    assert ask(server, "key-two", "house-model") == "house-model"
    assert server.config.app.state.gateway.settings.port != 1  # where to listen needs a restart
    cfg.write_text("{ not json")  # a half-saved edit changes nothing
    time.sleep(0.4)
    assert ask(server, "key-two")


def test_credentials_edits_merge_with_tokens_refreshed_meanwhile(live, fake):
    server, cfg, creds, config, admin, a, b = live
    stale_file = creds.read_text()  # an editor opened the file now…
    assert admin.post("/credentials/1/refresh").status_code == 200  # …then the gateway refreshed the token
    fresh = fake.account(a["id"])["access_token"]
    assert fresh != a["access_token"] and json.loads(creds.read_text())[0]["accessToken"] == fresh
    # …and the editor saves its old buffer, with a priority changed and a second account added.
    edited = json.loads(stale_file)
    edited[0]["priority"] = 5
    edited.append({"refreshToken": b["refresh_token"], "accessToken": b["access_token"],
                   "expiresAt": b["expires_at"], "authMethod": "social"})
    creds.write_text(json.dumps(edited, indent=2))
    assert wait_for(lambda: len(admin.get("/credentials").json()["credentials"]) == 2)
    views = {c["id"]: c for c in admin.get("/credentials").json()["credentials"]}
    assert views[1]["priority"] == 5 and views[2]["priority"] == 0
    assert wait_for(lambda: json.loads(creds.read_text())[0]["accessToken"] == fresh)  # the edit did not roll it back
    on_disk = json.loads(creds.read_text())
    assert on_disk[0]["priority"] == 5 and on_disk[1]["refreshToken"] == b["refresh_token"]
    ask(server, "key-one")  # priority 5 vs 0: the new account serves, and A's fresh token still works
    ask(server, "key-one")
    served = [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"]
    assert served[-2:] == [b["access_token"]] * 2
    edited = json.loads(creds.read_text())[:1]  # the person removes B again
    creds.write_text(json.dumps(edited))
    assert wait_for(lambda: list(c["id"] for c in admin.get("/credentials").json()["credentials"]) == [1])
    ask(server, "key-one")
    assert [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"][-1] == fresh
