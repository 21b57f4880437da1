"""The console's sign-in over a real socket: cookie flags, CSRF, sign-out, expiry, no-key mode, hand-off."""

from __future__ import annotations

import json

import httpx
import pytest

from kiro_gateway.console.sessions import COOKIE, SessionService

from support import own_account, start_gateway

ADMIN = "console-admin-key-0123456789"


@pytest.fixture(scope="module")
def gw(fake, tmp_path_factory):
    g = start_gateway(fake, tmp_path_factory.mktemp("console"), own_account(fake), admin_api_key=ADMIN)
    yield g
    g.server.stop()


@pytest.fixture(scope="module")
def plain(fake, tmp_path_factory):
    g = start_gateway(fake, tmp_path_factory.mktemp("console-off"), own_account(fake))
    yield g
    g.server.stop()


def _client(g) -> httpx.Client:
    return httpx.Client(base_url=g.base_url, timeout=10, headers={"origin": g.base_url})


def _sign_in(c: httpx.Client) -> tuple[httpx.Response, str]:
    r = c.post("/admin/session", json={"key": ADMIN})
    assert r.status_code == 200, r.text
    return r, r.json()["csrfToken"]


def test_sign_in_sets_a_strict_httponly_cookie_with_expiry(gw):
    with _client(gw) as c:
        r, csrf = _sign_in(c)
        cookie = r.headers["set-cookie"]
        low = cookie.lower()
        assert cookie.startswith(COOKIE + "=")
        assert "httponly" in low and "samesite=strict" in low and "path=/" in low and "max-age=" in low
        assert ADMIN not in cookie and ADMIN not in r.text
        state = c.get("/admin/session").json()
        assert state["signedIn"] and state["enabled"] and state["csrfToken"] == csrf
        assert c.get("/api/admin/credentials").status_code == 200  # the admin API takes the cookie


def test_wrong_key_and_cross_origin_sign_in_are_refused(gw):
    with _client(gw) as c:
        assert c.post("/admin/session", json={"key": "nope"}).status_code == 401
        assert c.post("/admin/session", content=b"not json").status_code == 400
        evil = c.post("/admin/session", json={"key": ADMIN}, headers={"origin": "http://evil.example"})
        assert evil.status_code == 403 and "set-cookie" not in evil.headers
        assert c.get("/api/admin/credentials").status_code == 401


def test_state_change_by_cookie_needs_csrf_token_and_same_origin(gw):
    with _client(gw) as c:
        _, csrf = _sign_in(c)
        body = {"name": "work"}
        no_token = c.put("/api/admin/credentials/1/name", json=body)
        assert no_token.status_code == 403 and "csrf" in no_token.json()["error"]["message"].lower()
        wrong = c.put("/api/admin/credentials/1/name", json=body, headers={"x-csrf-token": "x" + csrf})
        assert wrong.status_code == 403
        cross = c.put("/api/admin/credentials/1/name", json=body,
                      headers={"x-csrf-token": csrf, "origin": "http://evil.example"})
        assert cross.status_code == 403
        ok = c.put("/api/admin/credentials/1/name", json=body, headers={"x-csrf-token": csrf})
        assert ok.status_code == 200, ok.text
        creds = c.get("/api/admin/credentials").json()["credentials"]
        assert creds[0]["name"] == "work"
        assert json.loads(gw.credentials_path.read_text())[0]["name"] == "work"


def test_the_key_header_still_works_without_csrf(gw):
    r = httpx.get(gw.base_url + "/api/admin/credentials", headers={"x-api-key": ADMIN})
    assert r.status_code == 200


def test_sign_out_ends_the_session(gw):
    with _client(gw) as c:
        _, csrf = _sign_in(c)
        token = c.cookies[COOKIE]
        assert c.delete("/admin/session", headers={"x-csrf-token": "bad"}).status_code == 403
        r = c.delete("/admin/session", headers={"x-csrf-token": csrf})
        assert r.status_code == 200 and not r.json()["signedIn"]
        # the old cookie value, sent again, is no longer a session
        again = httpx.get(gw.base_url + "/api/admin/credentials", cookies={COOKIE: token})
        assert again.status_code == 401
        assert not httpx.get(gw.base_url + "/admin/session", cookies={COOKIE: token}).json()["signedIn"]


def test_sessions_expire():
    now = [1000.0]

    class S:
        admin_api_key = ADMIN

    svc = SessionService(S(), clock=lambda: now[0])
    token, _ = svc.create()
    assert svc.lookup(token) is not None
    now[0] += svc.lifetime - 1
    assert svc.lookup(token) is not None
    now[0] += 2
    assert svc.lookup(token) is None


def test_handoff_is_single_use_and_expires(gw):
    svc = gw.app.state.gateway.console
    token = svc.issue_handoff()
    with httpx.Client(base_url=gw.base_url, timeout=10) as c:
        r = c.get("/admin/handoff", params={"token": token})
        assert r.status_code == 303 and r.headers["location"] == "/admin/"
        assert "httponly" in r.headers["set-cookie"].lower()
        assert c.get("/admin/session").json()["signedIn"]
    second = httpx.get(gw.base_url + "/admin/handoff", params={"token": token})
    assert second.status_code == 403 and "set-cookie" not in second.headers
    assert httpx.get(gw.base_url + "/admin/handoff", params={"token": "made-up"}).status_code == 403
    now = [0.0]

    class S:
        admin_api_key = ADMIN

    local = SessionService(S(), clock=lambda: now[0])
    late = local.issue_handoff()
    now[0] += 61
    assert not local.consume_handoff(late)


def test_without_admin_key_the_console_signs_nobody_in(plain):
    with _client(plain) as c:
        state = c.get("/admin/session").json()
        assert state == {"enabled": False, "signedIn": False}
        assert c.post("/admin/session", json={"key": ""}).status_code == 404
        assert c.post("/admin/session", json={"key": "anything"}).status_code == 404
        assert c.get("/admin/events").status_code == 404
        svc = plain.app.state.gateway.console
        assert c.get("/admin/handoff", params={"token": svc.issue_handoff()}).status_code == 403


def test_static_assets_and_index_caching(gw):
    r = httpx.get(gw.base_url + "/admin/", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assets = [p for p in r.text.split('"') if p.startswith("/admin/assets/")]
    assert assets, "index.html names its hashed assets"
    for path in assets:
        a = httpx.get(gw.base_url + path, headers={"accept-encoding": "gzip"})
        assert a.status_code == 200 and "immutable" in a.headers["cache-control"]
        kind = "text/javascript" if path.endswith(".js") else "text/css"
        assert a.headers["content-type"].startswith(kind)
    assert httpx.get(gw.base_url + "/admin/assets/nope.js").status_code == 404
    assert httpx.get(gw.base_url + "/admin/accounts").headers["content-type"].startswith("text/html")  # SPA path
    assert httpx.get(gw.base_url + "/admin/../config.json").status_code in (200, 404)  # normalised, never a file
    bare = httpx.get(gw.base_url + "/admin", follow_redirects=False)
    assert bare.status_code == 308


def test_events_stream_needs_a_session_and_sends_credentials(gw):
    assert httpx.get(gw.base_url + "/admin/events").status_code == 401
    with _client(gw) as c:
        _sign_in(c)
        with c.stream("GET", "/admin/events") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            seen = ""
            for chunk in r.iter_text():
                seen += chunk
                if "event: credentials" in seen:
                    break
        assert "refreshTokenHash" in seen and "event: hello" in seen


def test_events_stream_ends_when_its_session_signs_out(gw):
    import time

    with _client(gw) as c:
        _, csrf = _sign_in(c)
        with c.stream("GET", "/admin/events") as r:
            chunks = r.iter_bytes()
            assert b"event: hello" in next(chunks)
            assert httpx.delete(gw.base_url + "/admin/session", cookies=c.cookies,
                                headers={"x-csrf-token": csrf, "origin": gw.base_url}).status_code == 200
            t0 = time.monotonic()
            for _ in chunks:
                assert time.monotonic() - t0 < 5
        assert time.monotonic() - t0 < 5


def test_playground_needs_a_session_and_names_the_credential(gw):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(gw.base_url + "/admin/try/v1/messages", json=body).status_code == 401
    with _client(gw) as c:
        _, csrf = _sign_in(c)
        nocsrf = c.post("/admin/try/v1/messages", json=body)
        assert nocsrf.status_code == 403, nocsrf.text  # no CSRF token
        r = c.post("/admin/try/v1/messages", json=body, headers={"x-csrf-token": csrf})
        assert r.status_code == 200, r.text
        assert r.json()["content"][0]["type"] == "text"
        assert r.headers["x-kiro-credential"] == "1"
        assert c.post("/admin/try/api/admin/credentials", json={}, headers={"x-csrf-token": csrf}).status_code == 404


def test_settings_endpoint_applies_and_saves(gw, tmp_path):
    h = {"x-api-key": ADMIN}
    r = httpx.get(gw.base_url + "/api/admin/config/settings", headers=h)
    assert r.status_code == 200 and r.json()["loadBalancing"] == "priority"
    bad = httpx.put(gw.base_url + "/api/admin/config/settings", headers=h, json={"cooldownSeconds": -1})
    assert bad.status_code == 400
    unknown = httpx.put(gw.base_url + "/api/admin/config/settings", headers=h, json={"apiKey": "x"})
    assert unknown.status_code == 400
    r = httpx.put(gw.base_url + "/api/admin/config/settings", headers=h,
                  json={"loadBalancing": "balanced", "cooldownSeconds": 42, "proxyUrl": "http://u:pw@127.0.0.1:9",
                        "proxyPassword": "hunter2-secret"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["loadBalancing"] == "balanced" and view["cooldownSeconds"] == 42
    assert view["proxyUrl"] == "http://127.0.0.1:9" and view["hasProxyPassword"]
    assert "hunter2" not in r.text and "pw@" not in r.text
    live = gw.app.state.gateway.settings
    assert live.load_balancing == "balanced" and live.cooldown_seconds == 42
    saved = json.loads((gw.credentials_path.parent / "config.json").read_text())
    assert saved["loadBalancing"] == "balanced" and saved["cooldownSeconds"] == 42
    httpx.put(gw.base_url + "/api/admin/config/settings", headers=h,
              json={"loadBalancing": "priority", "proxyUrl": "", "proxyPassword": ""})
    assert live.proxy_url is None and live.proxy_password is None


def test_settings_cover_the_anti_ban_and_long_session_keys(gw):
    h = {"x-api-key": ADMIN}
    url = gw.base_url + "/api/admin/config/settings"
    unknown = httpx.put(url, headers=h, json={"modelFallbacks": {"claude-opus-4-8": ["no-such-model-x"]}})
    assert unknown.status_code == 400 and "no-such-model-x" in unknown.text, unknown.text
    assert httpx.put(url, headers=h, json={"pacingJitter": 2}).status_code == 400
    r = httpx.put(url, headers=h, json={"loadBalancing": "random", "minIntervalPerCredential": 0.5, "pacingJitter": 0.1,
                                        "overflowPolicy": "trim",
                                        "modelFallbacks": {"claude-opus-4-8": ["claude-sonnet-4-6"]}})
    assert r.status_code == 200, r.text
    view = r.json()
    assert (view["loadBalancing"], view["minIntervalPerCredential"], view["pacingJitter"], view["overflowPolicy"]) \
        == ("random", 0.5, 0.1, "trim")
    assert view["modelFallbacks"] == {"claude-opus-4-8": ["claude-sonnet-4-6"]}
    live = gw.app.state.gateway.settings
    assert live.model_fallbacks == {"claude-opus-4-8": ["claude-sonnet-4-6"]} and live.min_interval_per_credential == 0.5
    saved = json.loads((gw.credentials_path.parent / "config.json").read_text())
    assert saved["modelFallbacks"] == {"claude-opus-4-8": ["claude-sonnet-4-6"]} and saved["overflowPolicy"] == "trim"
    httpx.put(url, headers=h, json={"loadBalancing": "priority", "minIntervalPerCredential": 0, "overflowPolicy": "compact",
                                    "modelFallbacks": {}})
    assert live.model_fallbacks == {}


def test_web_search_setting_is_live_and_saved(gw):
    h = {"x-api-key": ADMIN}
    assert httpx.get(gw.base_url + "/api/admin/config/settings", headers=h).json()["webSearch"] == "on"
    assert httpx.put(gw.base_url + "/api/admin/config/settings", headers=h, json={"webSearch": "maybe"}).status_code == 400
    r = httpx.put(gw.base_url + "/api/admin/config/settings", headers=h, json={"webSearch": "off"})
    assert r.status_code == 200 and r.json()["webSearch"] == "off"
    assert gw.app.state.gateway.settings.web_search == "off"
    assert json.loads((gw.credentials_path.parent / "config.json").read_text())["webSearch"] == "off"
    httpx.put(gw.base_url + "/api/admin/config/settings", headers=h, json={"webSearch": "on"})
    assert gw.app.state.gateway.settings.web_search == "on"
