"""Logins through the admin API: a gateway on a socket, the fake Kiro on another."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import anthropic
import httpx
import pytest

from support import free_port, own_account, start_gateway

ADMIN = "admin-secret-key-for-logins"


class Api:
    def __init__(self, gw) -> None:
        self.gw = gw
        self.client = httpx.Client(base_url=gw.base_url + "/api/admin", headers={"x-api-key": ADMIN}, timeout=15)
        self.seen: list[str] = []  # every response body, checked for secrets at the end

    def call(self, method: str, path: str, body=None, **kw) -> httpx.Response:
        r = self.client.request(method, path, json=body, **kw) if body is not None else \
            self.client.request(method, path, **kw)
        self.seen.append(r.text)
        return r

    def wait(self, login_id: str, timeout: float = 15) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            view = self.call("GET", f"/logins/{login_id}").json()
            if view["status"] != "pending":
                return view
            time.sleep(0.1)
        raise AssertionError(f"login {login_id} still pending")


@pytest.fixture
def api(fake, tmp_path):
    gw = start_gateway(fake, tmp_path, own_account(fake), admin_api_key=ADMIN, usage_on_start=False)
    a = Api(gw)
    yield a
    secrets = [s for acct in fake.accounts for s in (acct["refresh_token"], acct["access_token"],
                                                        acct["client_secret"]) if s]
    secrets += fake._call(lambda: list(fake.state.login.devices))  # device codes
    for text in a.seen:
        for s in secrets:
            assert s[:24] not in text, "a secret reached an admin response"
    a.client.close()
    gw.server.stop()


def open_and_approve(fake, authorize_url: str, **account) -> str:
    assert httpx.get(authorize_url).status_code == 200  # the person opens the sign-in page
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    return fake.approve_login(state=state, **account)["redirect"]


def test_device_login_adds_a_credential_that_serves_a_chat(api, fake):
    r = api.call("POST", "/logins", {"method": "builder-id"})
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["status"] == "pending" and view["method"] == "builder-id"
    assert view["userCode"] in view["verificationUriComplete"] and view["verificationUri"] and view["expiresAt"]
    assert "deviceCode" not in view and "clientSecret" not in view
    assert api.call("GET", f"/logins/{view['id']}").json()["status"] == "pending"
    fake.approve_login(view["userCode"])
    done = api.wait(view["id"])
    assert done["status"] == "done" and done["credentialId"] == 2 and done["duplicate"] is False
    listed = {c["id"]: c for c in api.call("GET", "/credentials").json()["credentials"]}
    assert listed[2]["authMethod"] == "idc" and listed[2]["status"] == "active"
    saved = json.loads(api.gw.credentials_path.read_text())
    assert saved[1]["clientId"] and saved[1]["authMethod"] == "idc"
    # The new account serves: switch the first one off and chat.
    assert api.call("POST", "/credentials/1/disabled", {"disabled": True}).status_code == 200
    client = anthropic.Anthropic(base_url=api.gw.base_url, api_key=api.gw.api_key, max_retries=0)
    msg = client.messages.create(model="claude-sonnet-4-6", max_tokens=20,
                                 messages=[{"role": "user", "content": "hello from a new login"}])
    assert msg.content[0].text
    served = [r for r in fake.requests if r["path"] == "/generateAssistantResponse"][-1]
    assert served["account"] == fake.account(saved[1]["refreshToken"])["id"]
    assert [a["id"] for a in api.call("GET", "/logins").json()["logins"]] == [view["id"]]


def test_social_login_by_pasted_url_then_a_duplicate(api, fake):
    r = api.call("POST", "/logins", {"method": "social", "provider": "google", "callbackPort": free_port()})
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["callbackListening"] is True and view["redirectUri"].startswith("http://localhost:")
    assert "userCode" not in view and "code_verifier" not in r.text
    redirect = open_and_approve(fake, view["authorizeUrl"])
    other = api.call("POST", "/logins", {"method": "social", "provider": "github", "callbackPort": free_port()}).json()
    wrong = api.call("POST", f"/logins/{other['id']}/callback", {"url": redirect})  # another login's URL
    assert wrong.status_code == 400 and "state" in wrong.json()["error"]["message"]
    done = api.call("POST", f"/logins/{view['id']}/callback", {"url": redirect})
    assert done.status_code == 200 and done.json()["status"] == "done", done.text
    cid = done.json()["credentialId"]
    again = api.call("POST", f"/logins/{view['id']}/callback", {"url": redirect})
    assert again.status_code == 409
    # The same account signing in again: nothing added, the existing credential named.
    account = fake.account(json.loads(api.gw.credentials_path.read_text())[-1]["refreshToken"])
    second = api.call("POST", "/logins", {"method": "social", "provider": "google", "callbackPort": free_port()}).json()
    redirect = open_and_approve(fake, second["authorizeUrl"], id=account["id"])
    dup = api.call("POST", f"/logins/{second['id']}/callback", {"url": redirect}).json()
    assert (dup["status"], dup["credentialId"], dup["duplicate"]) == ("done", cid, True)
    assert len(json.loads(api.gw.credentials_path.read_text())) == 2
    assert api.call("DELETE", f"/logins/{other['id']}").json()["status"] == "cancelled"


def test_social_login_through_the_loopback_callback(api, fake):
    port = free_port()
    view = api.call("POST", "/logins", {"method": "social", "provider": "github", "callbackPort": port}).json()
    redirect = open_and_approve(fake, view["authorizeUrl"])
    page = httpx.get(redirect.replace("localhost", "127.0.0.1"), timeout=10)
    assert page.status_code == 200 and "close this tab" in page.text
    assert api.wait(view["id"])["status"] == "done"


def test_denied_expired_cancelled(api, fake):
    denied = api.call("POST", "/logins", {"method": "idc", "startUrl": "https://my-org.awsapps.com/start",
                                          "region": "eu-west-1"}).json()
    assert denied["region"] == "eu-west-1"
    expired = api.call("POST", "/logins", {"method": "builder-id"}).json()
    cancelled = api.call("POST", "/logins", {"method": "builder-id"}).json()
    fake.deny_login(denied["userCode"])
    fake.expire_login(expired["userCode"])
    assert api.call("DELETE", f"/logins/{cancelled['id']}").json()["status"] == "cancelled"
    assert api.wait(denied["id"])["status"] == "denied"
    ended = api.wait(expired["id"])
    assert ended["status"] == "expired" and ended["error"]
    social = api.call("POST", "/logins", {"method": "social", "provider": "google", "callbackPort": free_port()}).json()
    assert httpx.get(social["authorizeUrl"]).status_code == 200
    refused = fake.deny_login(state=parse_qs(urlsplit(social["authorizeUrl"]).query)["state"][0])["redirect"]
    assert api.call("POST", f"/logins/{social['id']}/callback", {"url": refused}).json()["status"] == "denied"
    assert len(json.loads(api.gw.credentials_path.read_text())) == 1  # nothing added


@pytest.mark.parametrize("body, needle", [
    ({"method": "password"}, "method"),
    ({"method": "idc", "region": "eu-west-1"}, "startUrl"),
    ({"method": "idc", "startUrl": "http://my-org.awsapps.com/start", "region": "eu-west-1"}, "https"),
    ({"method": "idc", "startUrl": "https://my-org.awsapps.com/start", "region": "mars"}, "region"),
    ({"method": "social"}, "provider"),
    ({"method": "social", "provider": "facebook"}, "provider"),
    ({"method": "social", "provider": "google", "callbackPort": 80}, "callbackPort"),
    ([1, 2], "JSON object"),
])
def test_bad_input_is_a_400_admin_error(api, body, needle):
    r = api.call("POST", "/logins", body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request" and needle in err["message"]


def test_bad_callbacks_and_unknown_ids(api, fake):
    device = api.call("POST", "/logins", {"method": "builder-id"}).json()
    r = api.call("POST", f"/logins/{device['id']}/callback", {"url": "http://localhost:1/oauth/callback?code=a&state=b"})
    assert r.status_code == 400 and "social" in r.json()["error"]["message"]
    social = api.call("POST", "/logins", {"method": "social", "provider": "google", "callbackPort": free_port()}).json()
    for body in ({"url": "nothing here"}, {"url": ""}, {}):
        r = api.call("POST", f"/logins/{social['id']}/callback", body)
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request"
    r = api.call("POST", f"/logins/{social['id']}/callback", content=b"{not json")
    assert r.status_code == 400
    for method, path in (("GET", "/logins/nope"), ("DELETE", "/logins/nope"), ("POST", "/logins/nope/callback")):
        r = api.call(method, path, {"url": "x"} if method == "POST" else None)
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


def test_a_failure_while_saving_ends_the_login_with_an_error(fake, tmp_path):
    gw = start_gateway(fake, tmp_path, own_account(fake), admin_api_key=ADMIN, usage_on_start=False,
                       hot_reload=False)
    api = Api(gw)
    try:
        view = api.call("POST", "/logins", {"method": "builder-id"}).json()
        gw.credentials_path.unlink()
        gw.credentials_path.mkdir()  # the write-back cannot replace a directory
        fake.approve_login(view["userCode"])
        ended = api.wait(view["id"])
        assert ended["status"] == "error" and "Internal error" in ended["error"]
    finally:
        api.client.close()
        gw.server.stop()


def test_login_is_unreachable_upstream_is_a_502(fake, tmp_path):
    gw = start_gateway(fake, tmp_path, own_account(fake), admin_api_key=ADMIN, usage_on_start=False)
    gw.settings.oidc_base_url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    api = Api(gw)
    try:
        r = api.call("POST", "/logins", {"method": "builder-id"})
        assert r.status_code == 502 and r.json()["error"]["type"] == "api_error"
    finally:
        api.client.close()
        gw.server.stop()


def test_openapi_documents_the_login_routes(api):
    doc = api.call("GET", "/openapi.json").json()
    assert {"post", "get"} <= set(doc["paths"]["/api/admin/logins"])
    assert set(doc["paths"]["/api/admin/logins/{id}"]) == {"get", "delete"}
    assert "post" in doc["paths"]["/api/admin/logins/{id}/callback"]
    assert {"LoginStart", "LoginView", "LoginCallback", "LoginList"} <= set(doc["components"]["schemas"])
