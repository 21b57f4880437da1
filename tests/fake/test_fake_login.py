"""The fake's login endpoints: AWS SSO OIDC device code and the Kiro auth service's social PKCE."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

from fakekiro_support import body, generate

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
SCOPES = ["codewhisperer:completions", "codewhisperer:analysis", "codewhisperer:conversations"]


async def post(http, fake, path, payload):
    async with http.post(fake.url(path), json=payload) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def register(http, fake, **extra):
    status, client, _ = await post(http, fake, "/client/register",
                                   {"clientName": "kiro-gateway", "clientType": "public", "scopes": SCOPES,
                                    "grantTypes": [DEVICE, "refresh_token"], **extra})
    assert status == 200, client
    return client


async def start(http, fake, client, start_url="https://view.awsapps.com/start"):
    status, dev, _ = await post(http, fake, "/device_authorization",
                                {"clientId": client["clientId"], "clientSecret": client["clientSecret"],
                                 "startUrl": start_url})
    assert status == 200, dev
    return dev


async def poll(http, fake, client, dev, **override):
    payload = {"clientId": client["clientId"], "clientSecret": client["clientSecret"], "grantType": DEVICE,
               "deviceCode": dev["deviceCode"], **override}
    return await post(http, fake, "/token", payload)


def assert_oidc_error(result, code, status=400):
    got_status, data, headers = result
    assert (got_status, data["error"]) == (status, code), data
    assert data["error_description"] and set(data) == {"error", "error_description"}
    assert headers["x-amzn-ErrorType"].endswith("Exception")


async def test_register_client_shape_and_rules(fake, http):
    client = await register(http, fake)
    assert set(client) == {"clientId", "clientSecret", "clientIdIssuedAt", "clientSecretExpiresAt"}
    assert client["clientSecretExpiresAt"] - client["clientIdIssuedAt"] >= 30 * 86400
    assert_oidc_error(await post(http, fake, "/client/register", {"clientType": "public"}), "invalid_request")
    assert_oidc_error(await post(http, fake, "/client/register", {"clientName": "x", "clientType": "confidential"}),
                      "invalid_client_metadata")
    assert_oidc_error(await post(http, fake, "/client/register", {"clientName": "x", "clientType": "public",
                                                                 "scopes": "codewhisperer:completions"}),
                      "invalid_request")


async def test_device_authorization_checks_the_client_and_start_url(fake, http):
    client = await register(http, fake)
    dev = await start(http, fake, client)
    assert dev["userCode"] in dev["verificationUriComplete"] and dev["verificationUri"].startswith("http://")
    assert dev["expiresIn"] == 600 and dev["interval"] >= 1 and len(dev["deviceCode"]) > 40
    bad = {"clientId": client["clientId"], "clientSecret": "wrong", "startUrl": "https://view.awsapps.com/start"}
    assert_oidc_error(await post(http, fake, "/device_authorization", bad), "invalid_client", 401)
    bad = {"clientId": client["clientId"], "clientSecret": client["clientSecret"], "startUrl": "http://x"}
    assert_oidc_error(await post(http, fake, "/device_authorization", bad), "invalid_request")
    refresh_only = await register(http, fake, grantTypes=["refresh_token"])
    assert_oidc_error(await post(http, fake, "/device_authorization",
                                 {"clientId": refresh_only["clientId"], "clientSecret": refresh_only["clientSecret"],
                                  "startUrl": "https://view.awsapps.com/start"}), "unauthorized_client")


async def test_device_flow_pending_slow_down_approved_then_refresh_works(fake, http):
    client = await register(http, fake)
    dev = await start(http, fake, client)
    assert_oidc_error(await poll(http, fake, client, dev), "authorization_pending")
    assert_oidc_error(await poll(http, fake, client, dev), "slow_down")  # again at once: too fast
    assert fake.logins()["devices"][0]["interval"] == dev["interval"] + 5  # and the interval grew
    assert_oidc_error(await poll(http, fake, client, dev, clientSecret="nope"), "invalid_client", 401)
    assert fake.approve_login(dev["userCode"], subscription="KIRO FREE") == {"approved": True}
    fake.state.login.devices[dev["deviceCode"]]["last_poll"] = 0  # skip the 6 s wait
    status, tokens, _ = await poll(http, fake, client, dev)
    assert status == 200, tokens
    assert tokens["tokenType"] == "Bearer" and tokens["expiresIn"] > 3000
    assert len(tokens["refreshToken"]) >= 100 and tokens["accessToken"]
    acct = fake.account(tokens["accessToken"])
    assert (acct["auth"], acct["client_id"], acct["subscription"]) == ("idc", client["clientId"], "KIRO FREE")
    assert (await generate(http, fake, body("hi"), token=tokens["accessToken"])).status == 200
    fake.state.login.devices[dev["deviceCode"]]["last_poll"] = 0
    assert_oidc_error(await poll(http, fake, client, dev), "invalid_grant")  # a device code works once
    status, refreshed, _ = await post(http, fake, "/token", {
        "clientId": client["clientId"], "clientSecret": client["clientSecret"], "grantType": "refresh_token",
        "refreshToken": tokens["refreshToken"]})
    assert status == 200 and refreshed["accessToken"] != tokens["accessToken"]


async def test_device_flow_denied_expired_and_unknown(fake, http):
    client = await register(http, fake)
    denied, expired = await start(http, fake, client), await start(http, fake, client)
    assert fake.deny_login(denied["userCode"]) == {"denied": True}
    assert_oidc_error(await poll(http, fake, client, denied), "access_denied")
    fake.expire_login(expired["userCode"])
    assert_oidc_error(await poll(http, fake, client, expired), "expired_token")
    assert_oidc_error(await poll(http, fake, client, denied, deviceCode="x" * 60), "invalid_grant")
    other = await register(http, fake)
    assert_oidc_error(await poll(http, fake, other, denied), "invalid_grant")  # not this client's code
    assert_oidc_error(await poll(http, fake, client, denied, deviceCode=None), "invalid_request")


async def test_device_page_approves_like_a_person(fake, http):
    client = await register(http, fake)
    dev = await start(http, fake, client)
    async with http.get(dev["verificationUriComplete"]) as resp:
        assert resp.status == 200 and dev["userCode"] in await resp.text()
    async with http.post(fake.url("/device"), data={"user_code": dev["userCode"], "decision": "approve"}) as resp:
        assert resp.status == 200 and "approved" in await resp.text()
    status, tokens, _ = await poll(http, fake, client, dev)
    assert status == 200 and tokens["refreshToken"]


async def test_login_control_api_over_http(fake, http):
    client = await register(http, fake)
    dev = await start(http, fake, client)
    async with http.get(fake.url("/__fake/logins")) as resp:
        listed = await resp.json()
    assert listed["devices"][0]["userCode"] == dev["userCode"] and listed["clients"] == 1
    for payload, needle in (({}, "userCode"), ({"userCode": "NOPE-NOPE"}, "NOPE"),
                            ({"userCode": dev["userCode"], "account": {"bogus": 1}}, "bogus")):
        async with http.post(fake.url("/__fake/logins/approve"), json=payload) as resp:
            assert resp.status == 400 and needle in (await resp.json())["error"]
    async with http.post(fake.url("/__fake/logins/deny"), json={"userCode": dev["userCode"]}) as resp:
        assert resp.status == 200
    async with http.post(fake.url("/__fake/logins/approve"), json={"userCode": dev["userCode"]}) as resp:
        assert resp.status == 400 and "denied" in (await resp.json())["error"]


# -- social ----------------------------------------------------------------------------------------


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def authorize(http, fake, redirect="http://localhost:3128/oauth/callback", **override):
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    query = {"idp": "Google", "redirect_uri": redirect, "code_challenge": challenge,
             "code_challenge_method": "S256", "state": state, **override}
    async with http.get(fake.url("/login"), params={k: v for k, v in query.items() if v is not None}) as resp:
        return resp.status, await resp.text(), verifier, state


def code_of(url: str, state: str) -> str:
    q = parse_qs(urlsplit(url).query)
    assert q["state"] == [state]
    return q["code"][0]


async def test_social_authorize_checks_its_parameters(fake, http):
    assert (await authorize(http, fake))[0] == 200
    assert (await authorize(http, fake, idp="Facebook"))[0] == 400
    assert (await authorize(http, fake, redirect="https://evil.example/cb"))[0] == 400
    assert (await authorize(http, fake, redirect="http://localhost/no-port"))[0] == 400
    assert (await authorize(http, fake, redirect="kiro://kiro.kiroAgent/authenticate-success"))[0] == 200
    assert (await authorize(http, fake, code_challenge_method="plain"))[0] == 400
    assert (await authorize(http, fake, state=None))[0] == 400


async def test_social_code_exchange_is_strict_and_one_time(fake, http):
    redirect = "http://127.0.0.1:3128/oauth/callback"
    status, _, verifier, state = await authorize(http, fake, redirect=redirect, idp="Github")
    assert status == 200
    approved = fake.approve_login(state=state)
    assert approved["redirect"].startswith(redirect + "?")
    code = code_of(approved["redirect"], state)
    exchange = {"code": code, "code_verifier": verifier, "redirect_uri": redirect}
    status, tokens, _ = await post(http, fake, "/oauth/token", exchange)
    assert status == 200, tokens
    assert set(tokens) == {"accessToken", "refreshToken", "profileArn", "expiresIn"}
    assert fake.account(tokens["accessToken"])["auth"] == "social"
    status, err, _ = await post(http, fake, "/oauth/token", exchange)  # used: gone
    assert (status, err["error"]) == (400, "invalid_grant")
    status, refreshed, _ = await post(http, fake, "/refreshToken", {"refreshToken": tokens["refreshToken"]})
    assert status == 200 and refreshed["accessToken"]

    # A wrong verifier and a different redirect_uri each burn the code.
    for change, want in (({"code_verifier": pkce()[0]}, 400), ({"redirect_uri": redirect + "?x=1"}, 500)):
        _, _, verifier, state = await authorize(http, fake, redirect=redirect)
        code = code_of(fake.approve_login(state=state)["redirect"], state)
        good = {"code": code, "code_verifier": verifier, "redirect_uri": redirect}
        assert (await post(http, fake, "/oauth/token", {**good, **change}))[0] == want
        assert (await post(http, fake, "/oauth/token", good))[0] == 400


async def test_social_denied_expired_and_the_page(fake, http):
    _, page, _, state = await authorize(http, fake)
    assert "approve" in page
    denied = fake.deny_login(state=state)
    assert parse_qs(urlsplit(denied["redirect"]).query) == {"error": ["access_denied"], "state": [state]}
    _, _, verifier, state = await authorize(http, fake)
    code = code_of(fake.approve_login(state=state)["redirect"], state)
    fake.expire_login(state=state)
    status, err, _ = await post(http, fake, "/oauth/token", {"code": code, "code_verifier": verifier,
                                                             "redirect_uri": "http://localhost:3128/oauth/callback"})
    assert (status, err["error"]) == (400, "invalid_grant")
    # The page's own form, as a browser would post it: a redirect back with code and state.
    _, page, _, state = await authorize(http, fake)
    authz = page.split("name='authz' value='")[1].split("'")[0]
    async with http.post(fake.url("/login"), data={"authz": authz, "decision": "approve"},
                         allow_redirects=False) as resp:
        assert resp.status == 302 and code_of(resp.headers["Location"], state)
    await asyncio.sleep(0)
