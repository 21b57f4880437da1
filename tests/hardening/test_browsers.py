"""A web page the user visits cannot use the gateway: DNS rebinding and cross-site requests refused.

Over a real socket with raw headers as a browser would send them (the attack needs no
preflight: a `text/plain` POST is a "simple" request). A real Chromium then shows the same from
a page on another origin, and CORS letting a listed origin in.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from support import own_account, start_gateway

BODY = json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 20,
                   "messages": [{"role": "user", "content": "spend my quota"}]})


def _post(gw, **headers) -> httpx.Response:
    return httpx.post(gw.base_url + "/v1/messages", content=BODY, timeout=10,
                      headers={"content-type": "text/plain", "anthropic-version": "2023-06-01", **headers})


@pytest.fixture
def keyless(fake, clean_fake, tmp_path):
    gw = start_gateway(fake, tmp_path, own_account(fake), api_key=None)
    yield gw
    gw.server.stop()


def test_no_key_gateway_refuses_a_rebound_host_and_a_foreign_origin(keyless, fake):
    port = keyless.base_url.rsplit(":", 1)[1]
    before = len(fake.requests)
    r = _post(keyless, host=f"evil.example:{port}", origin=f"http://evil.example:{port}")
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert "allowedHosts" in r.json()["error"]["message"]
    r = _post(keyless, origin="https://evil.example")  # cross-site POST, Host is ours
    assert r.status_code == 403 and "corsOrigins" in r.json()["error"]["message"]
    r = _post(keyless, origin="null")  # a sandboxed frame or file:// page
    assert r.status_code == 403
    assert len(fake.requests) == before  # nothing reached Kiro
    # Gemini's path gets Gemini's error shape.
    r = httpx.post(keyless.base_url + "/v1beta/models/gemini-2.5-pro:generateContent", content="{}",
                   headers={"origin": "https://evil.example"}, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    # Clients send no Origin; names of this machine, addresses and *.localhost are answered.
    for host in ("localhost", f"localhost:{port}", "127.0.0.1", "[::1]:9", "dev.localhost"):
        assert _post(keyless, host=host).status_code == 200, host
    # Same-origin (the console's own pages) passes.
    assert _post(keyless, origin=f"http://127.0.0.1:{port}").status_code == 200


def test_allowed_hosts_and_cors_origins_reload_live(keyless):
    port = keyless.base_url.rsplit(":", 1)[1]
    assert _post(keyless, host="gw.corp.example").status_code == 403
    keyless.settings.allowed_hosts = ["*.corp.example"]
    keyless.settings.cors_origins = ["https://chat.corp.example"]
    assert _post(keyless, host="gw.corp.example").status_code == 200
    assert _post(keyless, host="corp.example.evil").status_code == 403
    pre = httpx.options(keyless.base_url + "/v1/messages", timeout=10, headers={
        "origin": "https://chat.corp.example", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-api-key"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://chat.corp.example"
    r = _post(keyless, origin="https://chat.corp.example")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://chat.corp.example"
    assert _post(keyless, origin="https://other.example").status_code == 403
    assert _post(keyless, host=f"127.0.0.1:{port}").status_code == 200


def test_a_keyed_gateway_answers_any_host_unless_allowed_hosts_is_set(fake, clean_fake, tmp_path):
    gw = start_gateway(fake, tmp_path, own_account(fake))
    try:
        assert _post(gw, host="gw.team.example", **{"x-api-key": gw.api_key}).status_code == 200
        gw.settings.allowed_hosts = ["gw.team.example"]
        assert _post(gw, host="other.example", **{"x-api-key": gw.api_key}).status_code == 403
        assert _post(gw, origin="https://evil.example", **{"x-api-key": gw.api_key}).status_code == 403
    finally:
        gw.server.stop()


class _Page(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args):
        pass


def test_a_page_on_another_origin_in_chromium_cannot_post_but_a_cors_origin_can(keyless, fake):
    if not shutil.which("chromium") and not shutil.which("/usr/bin/chromium"):
        pytest.skip("chromium is missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    _Page.html = b"<html><body>page</body></html>"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page_origin = f"http://localhost:{server.server_address[1]}"
    script = """async ([url, body]) => {
        try { await fetch(url, {method: 'POST', mode: 'no-cors', body, headers: {'content-type': 'text/plain'}}); }
        catch (e) {}
        try { const r = await fetch(url, {method: 'POST', body, headers: {'content-type': 'application/json',
              'anthropic-version': '2023-06-01'}}); return r.status; } catch (e) { return 'blocked'; }
    }"""
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(page_origin + "/")
            before = len([r for r in fake.requests if r["path"] == "/generateAssistantResponse"])
            assert page.evaluate(script, [keyless.base_url + "/v1/messages", BODY]) == "blocked"
            after = len([r for r in fake.requests if r["path"] == "/generateAssistantResponse"])
            assert after == before  # neither the simple nor the preflighted request reached Kiro
            keyless.settings.cors_origins = [page_origin]
            assert page.evaluate(script, [keyless.base_url + "/v1/messages", BODY]) == 200
            browser.close()
    finally:
        server.shutdown()
