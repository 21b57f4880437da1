"""The admin API under /api/admin, over real sockets, against the fake Kiro."""

from __future__ import annotations

import json
import logging
import os
import stat

import anthropic
import httpx
import pytest
from starlette.routing import Mount

from kiro_gateway.admin.openapi import ROUTES
from kiro_gateway.admin.schemas import CredentialView

from support import start_gateway

ADMIN = "admin-secret-key-0123456789"
MODEL = "claude-sonnet-4-6"


class Admin:
    def __init__(self, gw) -> None:
        self.gw = gw
        self.client = httpx.Client(base_url=gw.base_url + "/api/admin", headers={"x-api-key": ADMIN}, timeout=10)
        self.n = 0

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, body=None, **kw):
        return self.client.post(path, json=body, **kw) if body is not None else self.client.post(path, **kw)

    def put(self, path, body, **kw):
        return self.client.put(path, json=body, **kw)

    def delete(self, path, **kw):
        return self.client.delete(path, **kw)

    def creds(self) -> dict:
        r = self.get("/credentials")
        assert r.status_code == 200, r.text
        return {c["id"]: c for c in r.json()["credentials"]}

    def chat(self, text: str | None = None) -> str:
        """One request (a new conversation each time unless `text` is given); the token that served it."""
        self.n += 1
        client = anthropic.Anthropic(base_url=self.gw.base_url, api_key=self.gw.api_key, max_retries=0)
        content = text or f"q{self.n}"
        client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": content}])
        return [r["token"] for r in self.gw.fake.requests if r["path"] == "/generateAssistantResponse"][-1]


@pytest.fixture
def admin(fake, clean_fake, tmp_path):
    """Two accounts: A (social, priority 0) and B (IdC with a client secret, priority 1, own proxy creds)."""
    a, b = fake.add_account(), fake.add_account(auth="idc")
    creds = [
        {"refreshToken": a["refresh_token"], "accessToken": a["access_token"], "expiresAt": a["expires_at"],
         "authMethod": "social", "priority": 0},
        {"refreshToken": b["refresh_token"], "accessToken": b["access_token"], "expiresAt": b["expires_at"],
         "authMethod": "idc", "clientId": b["client_id"], "clientSecret": b["client_secret"], "priority": 1},
    ]
    (tmp_path / "config.json").write_text(json.dumps({"apiKey": "k", "adminApiKey": ADMIN, "note": "keep"}))
    gw = start_gateway(fake, tmp_path, creds, admin_api_key=ADMIN, usage_on_start=False, cooldown_seconds=300.0)
    api = Admin(gw)
    yield api, a, b
    api.client.close()
    gw.server.stop()


def secrets_of(*accts) -> list[str]:
    return [s for a in accts for s in (a["refresh_token"], a["access_token"], a.get("client_secret")) if s]


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for s in secrets:
        for i in range(0, len(s) - 16, 8):  # no 16-char piece of any secret either
            assert s[i:i + 16] not in text, "a secret leaked"


def test_auth_missing_or_wrong_key_is_401_and_both_headers_work(admin):
    api, _, _ = admin
    url = api.gw.base_url + "/api/admin/credentials"
    for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}, {"authorization": ADMIN}):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(url, headers={"authorization": f"Bearer {ADMIN}"}).status_code == 200
    assert httpx.get(url, headers={"x-api-key": ADMIN}).status_code == 200


def test_disabled_without_admin_key_is_404(gateway):
    r = httpx.get(gateway.base_url + "/api/admin/credentials", headers={"x-api-key": "anything"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


def test_list_masks_every_secret(admin, caplog):
    api, a, b = admin
    caplog.set_level(logging.DEBUG)
    api.post("/credentials/2/refresh")
    r = api.get("/credentials")
    body = r.json()
    assert body["total"] == 2 and body["available"] == 2 and body["currentId"] == 1
    views = {c["id"]: c for c in body["credentials"]}
    assert views[1]["isCurrent"] and not views[2]["isCurrent"]
    assert views[2]["authMethod"] == "idc" and views[1]["status"] == "active" and views[1]["hasProfileArn"] is False
    assert len(views[1]["refreshTokenHash"]) == 64
    assert set(views[1]) == set(CredentialView.model_fields)  # every documented field, no more
    now_b = api.gw.fake.account(b["id"])
    assert_no_secret(r.text, secrets_of(a, b, now_b))
    assert_no_secret(caplog.text, secrets_of(a, b, now_b))


def test_add_validates_refreshes_fetches_usage_and_persists(admin):
    api, a, b = admin
    new = api.gw.fake.add_account(subscription="KIRO PRO+", email="new@example.com")
    r = api.post("/credentials", {"refreshToken": new["refresh_token"], "priority": 3})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["credentialId"] == 3 and body["email"] == "new@example.com"
    assert body["subscriptionTitle"] == "KIRO PRO+" and body["usageError"] is None
    assert api.gw.fake.refresh_count(new["refresh_token"]) == 1  # refreshed for real
    stored = json.loads(api.gw.credentials_path.read_text())
    assert [d["id"] for d in stored] == [1, 2, 3]
    assert stored[2]["accessToken"] == api.gw.fake.account(new["id"])["access_token"]
    assert stored[2]["priority"] == 3 and stored[2]["subscriptionTitle"] == "KIRO PRO+"
    assert stat.S_IMODE(os.stat(api.gw.credentials_path).st_mode) == 0o600
    assert api.creds()[3]["email"] == "new@example.com"
    assert_no_secret(r.text, secrets_of(new, api.gw.fake.account(new["id"])))

    bad = [({"refreshToken": "short"}, 400), ({"refreshToken": "a" * 60 + "..." + "b" * 60}, 400),
           ({"refreshToken": a["refresh_token"]}, 409), ({"refreshToken": new["refresh_token"]}, 409),
           ({"refreshToken": "z" * 120}, 400),  # unknown to Kiro: invalid_grant
           ({"refreshToken": "y" * 120, "authMethod": "idc"}, 400),  # no client
           ({"refreshToken": "y" * 120, "proxyUrl": "ftp://nope"}, 400),
           ({"refreshToken": 5}, 400), ({"authMethod": "magic"}, 400), ({}, 400)]
    for payload, status in bad:
        r = api.post("/credentials", payload)
        assert r.status_code == status, (payload, r.text)
        assert set(r.json()["error"]) == {"type", "message"}
    for raw in (b"not json", b"[1,2]", b""):
        assert api.post("/credentials", content=raw).status_code == 400
    assert len(json.loads(api.gw.credentials_path.read_text())) == 3


def test_delete_only_when_disabled(admin):
    api, a, b = admin
    r = api.delete("/credentials/2")
    assert r.status_code == 400 and "disable" in r.json()["error"]["message"]
    assert api.post("/credentials/2/disabled", {"disabled": True}).status_code == 200
    assert api.delete("/credentials/2").status_code == 200
    assert list(api.creds()) == [1]
    assert [d["id"] for d in json.loads(api.gw.credentials_path.read_text())] == [1]
    assert api.delete("/credentials/2").status_code == 404
    assert api.delete("/credentials/abc").status_code == 404


def test_disable_and_enable_change_who_serves(admin):
    api, a, b = admin
    assert api.chat() == a["access_token"]
    assert api.post("/credentials/1/disabled", {"disabled": True}).status_code == 200
    view = api.creds()[1]
    assert view["disabled"] and view["status"] == "disabled" and view["disabledReason"] == "Manual"
    assert json.loads(api.gw.credentials_path.read_text())[0]["disabled"] is True
    assert api.chat() == b["access_token"]
    assert api.post("/credentials/1/disabled", {"disabled": False}).status_code == 200
    assert api.chat() == a["access_token"]
    for payload in ({"disabled": "yes"}, {}, {"disabled": 1}):
        assert api.post("/credentials/1/disabled", payload).status_code == 400
    assert api.post("/credentials/9/disabled", {"disabled": True}).status_code == 404


def test_priority_changes_selection(admin):
    api, a, b = admin
    assert api.chat("one conversation") == a["access_token"]  # the session now sticks to A
    assert api.post("/credentials/1/priority", {"priority": 5}).status_code == 200
    assert api.chat() == b["access_token"]
    assert api.chat("one conversation") == b["access_token"]  # sessions pick again under the new order
    assert api.creds()[1]["priority"] == 5 and api.creds()[2]["isCurrent"]
    assert json.loads(api.gw.credentials_path.read_text())[0]["priority"] == 5
    for payload in ({"priority": -1}, {"priority": "high"}, {"priority": 1.5}):
        assert api.post("/credentials/1/priority", payload).status_code == 400


def test_reset_clears_cooldown(admin):
    api, a, b = admin
    api.gw.fake.add_script({"token": a["access_token"], "status": 429, "body": {"message": "Too many requests"}})
    assert api.chat() == b["access_token"]  # A throttled: failed over, A cooling down for 300 s
    view = api.creds()[1]
    assert view["status"] == "cooldown" and view["cooldownUntil"] and view["failureCount"] == 1
    assert api.chat() == b["access_token"]
    r = api.post("/credentials/1/reset")
    assert r.status_code == 200 and r.json()["success"] is True
    view = api.creds()[1]
    assert view["status"] == "active" and view["cooldownUntil"] is None and view["failureCount"] == 0
    assert api.chat() == a["access_token"]


def test_refresh_now_and_balance(admin):
    api, a, b = admin
    before = api.gw.fake.refresh_count(a["refresh_token"])
    r = api.post("/credentials/1/refresh")
    assert r.status_code == 200 and r.json()["expiresAt"]
    assert api.gw.fake.refresh_count(a["refresh_token"]) == before + 1
    assert json.loads(api.gw.credentials_path.read_text())[0]["accessToken"] == api.gw.fake.account(a["id"])["access_token"]
    bal = api.get("/credentials/1/balance")
    assert bal.status_code == 200, bal.text
    body = bal.json()
    assert body["id"] == 1 and body["usageLimit"] == 1000.0 and body["remaining"] == 1000.0
    assert body["subscriptionTitle"] == "KIRO PRO" and body["nextResetAt"].endswith("T00:00:00Z")
    assert api.get("/credentials/1/balance").json()["cached"] is True
    assert api.get("/credentials/7/balance").status_code == 404


def test_load_balancing_get_set_persisted(admin):
    api, _, _ = admin
    assert api.get("/config/load-balancing").json() == {"mode": "priority"}
    r = api.put("/config/load-balancing", {"mode": "round_robin"})
    assert r.status_code == 200 and r.json() == {"mode": "round_robin"}
    assert api.get("/config/load-balancing").json() == {"mode": "round_robin"}
    assert api.gw.app.state.gateway.settings.load_balancing == "round_robin"
    config = api.gw.credentials_path.parent / "config.json"
    saved = json.loads(config.read_text())
    assert saved["loadBalancing"] == "round_robin" and saved["note"] == "keep" and saved["adminApiKey"] == ADMIN
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    for payload in ({"mode": "lottery"}, {}, {"mode": 1}):
        assert api.put("/config/load-balancing", payload).status_code == 400
    assert api.get("/config/load-balancing").json() == {"mode": "round_robin"}


def test_unknown_paths_and_methods_are_json_404(admin):
    api, _, _ = admin
    for r in (api.get("/nope"), api.get("/credentials/1"), api.post("/credentials/1/explode")):
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


def test_openapi_document_lists_every_route(admin):
    api, _, _ = admin
    r = api.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    mount = next(rt for rt in api.gw.app.routes if isinstance(rt, Mount) and rt.path == "/api/admin")
    served = {(m, "/api/admin" + rt.path) for rt in mount.routes if "{rest" not in rt.path
              for m in rt.methods - {"HEAD"}}
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented and len(served) == len(ROUTES) >= 24
    schemas = doc["components"]["schemas"]
    for ops in doc["paths"].values():
        for op in ops.values():
            refs = [op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})]
            refs += [c["schema"] for resp in op["responses"].values() for c in resp["content"].values()]
            for ref in refs:
                if "$ref" in ref:
                    assert ref["$ref"].rsplit("/", 1)[1] in schemas
    assert "refreshToken" in schemas["AddCredential"]["properties"]
