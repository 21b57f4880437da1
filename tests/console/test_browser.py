"""The console in a real browser (Debian's Chromium driven by Playwright) against a gateway on the fake Kiro.

Skipped when /usr/bin/chromium or playwright is missing, unless KG_REQUIRE_E2E=1 (set by .ci/run),
where that is a failure. Screenshots of every page go to artifacts/screenshots/ (printed).
Every response body the browser receives is recorded and searched for the seeded secrets.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from support import API_KEY, start_gateway

CHROMIUM = "/usr/bin/chromium"
ADMIN = "browser-admin-key-0123456789abcdef"
PROXY_PASSWORD = "proxy-pass-7f3a9c1e"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def _need_browser():
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "playwright is not installed"
    if missing is None and not os.path.exists(CHROMIUM):
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing:
        if os.environ.get("KG_REQUIRE_E2E") == "1":
            pytest.fail(missing)
        pytest.skip(missing)


@pytest.fixture(scope="module")
def world(fake, tmp_path_factory):
    _need_browser()
    social = fake.add_account()
    idc = fake.add_account(auth="idc")
    key_acct = fake.add_account(auth="api_key")
    spare = fake.add_account()
    creds = [
        {"refreshToken": social["refresh_token"], "authMethod": "social", "name": "main social"},
        {"refreshToken": idc["refresh_token"], "authMethod": "idc", "clientId": idc["client_id"],
         "clientSecret": idc["client_secret"], "priority": 1},
        {"kiroApiKey": key_acct["access_token"], "authMethod": "api_key", "priority": 2},
        {"refreshToken": spare["refresh_token"], "authMethod": "social", "priority": 3, "disabled": True,
         "proxyUrl": "http://127.0.0.1:9", "proxyUsername": "proxyuser", "proxyPassword": PROXY_PASSWORD},
    ]
    gw = start_gateway(fake, tmp_path_factory.mktemp("browser"), creds, admin_api_key=ADMIN)
    (gw.credentials_path.parent / "config.json").write_text("{}")
    yield gw, fake, [social, idc, key_acct, spare]
    gw.server.stop()


def _secrets(fake, accounts) -> list[str]:
    out = [ADMIN, API_KEY, PROXY_PASSWORD]
    for a in fake.accounts:
        out += [a.get("refresh_token"), a.get("access_token"), a.get("client_secret")]
    for a in accounts:
        out += [a.get("refresh_token"), a.get("access_token"), a.get("client_secret")]
    return sorted({s for s in out if s and len(s) >= 8})


def open_login_tab(page):
    page.click("button[data-action=add]")
    page.click(".modal [role=tab]:has-text('Log in')")


def _login_secrets(fake) -> list[str]:
    """What the fake's login service handed the gateway: client secrets, device and authorization codes."""
    def collect():
        login = fake.state.login
        return [c["secret"] for c in login.clients.values()] + list(login.devices) + list(login.codes)
    return fake._call(collect)


def test_console_flows_in_chromium(world):
    from playwright.sync_api import expect, sync_playwright

    gw, fake, accounts = world
    social = accounts[0]
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {SHOTS}")
    bodies: list[tuple[str, bytes]] = []
    new_acct = fake.add_account()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(15000)
        page.on("dialog", lambda d: d.accept())

        def record(resp):
            try:
                if "text/event-stream" not in (resp.headers.get("content-type") or ""):
                    bodies.append((resp.url, resp.body()))
            except Exception:  # noqa: BLE001 - a body the browser dropped (navigation)
                pass

        page.on("response", record)

        def shot(name):
            page.wait_for_timeout(300)
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

        # -- sign in (Enter submits) -----------------------------------------------------------
        page.goto(gw.base_url + "/admin/")
        shot("signin")
        page.fill("input[name=key]", "wrong-key")
        page.press("input[name=key]", "Enter")
        expect(page.locator(".notice.error")).to_be_visible()
        page.fill("input[name=key]", ADMIN)
        page.press("input[name=key]", "Enter")
        expect(page.locator("nav a[data-page=accounts]")).to_be_visible()
        cookie = next(c for c in ctx.cookies() if c["name"] == "kg_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > time.time()
        assert page.evaluate("document.cookie") == ""  # invisible to scripts
        expect(page.locator(".kpi").first).to_be_visible()
        shot("overview")

        # -- add a credential through the dialog; it turns active --------------------------------
        page.click("nav a[data-page=accounts]")
        expect(page.locator("tr[data-id='1']")).to_be_visible()
        page.click("button[data-action=add]")
        page.fill(".modal input[name=name]", "added in dialog")
        page.fill(".modal textarea[name=refreshToken]", new_acct["refresh_token"])
        shot("accounts-add-dialog")
        page.click(".modal button[type=submit]")
        expect(page.locator(".modal")).to_have_count(0)
        row = page.locator("tr[data-id='5']")
        expect(row).to_have_attribute("data-status", "active")
        expect(row.locator("input[aria-label='Name']")).to_have_value("added in dialog")
        shot("accounts")

        # -- batch import: one new token, one already in the pool (skipped), one repeated (once) ------
        batch_acct = fake.add_account()
        page.click("button[data-action=add]")
        page.click(".modal [data-tab='Batch import']")
        page.fill(".modal textarea[name=batch]", "\n".join([batch_acct["refresh_token"], social["refresh_token"],
                                                             batch_acct["refresh_token"]]))
        page.click(".modal button.primary")
        expect(page.locator(".modal progress")).to_have_attribute("value", "2")
        expect(page.locator(".modal .notice.ok")).to_have_text("1 added, 1 skipped as duplicates, 0 failed")
        shot("accounts-batch-import")
        page.keyboard.press("Escape")
        batch_row = page.locator("tr[data-id='6']")
        expect(batch_row).to_have_attribute("data-status", "active")
        batch_row.locator("input[role=switch]").click()
        expect(batch_row).to_have_attribute("data-status", "disabled")
        batch_row.locator("button[data-action=delete]").click()
        expect(page.locator("tr[data-id='6']")).to_have_count(0)

        # -- disable, then delete it ---------------------------------------------------------------
        expect(row.locator("button[data-action=delete]")).to_be_disabled()
        row.locator("input[role=switch]").click()
        expect(row).to_have_attribute("data-status", "disabled")
        row.locator("button[data-action=delete]").click()
        expect(page.locator("tr[data-id='5']")).to_have_count(0)
        assert all(c.get("refreshToken") != new_acct["refresh_token"] for c in json.loads(gw.credentials_path.read_text()))

        # -- the playground streams and names the serving account ------------------------------------
        page.click("nav a[data-page=playground]")
        page.fill("textarea[name=message]", "Say hello from the console")
        page.click("form button[type=submit]")
        expect(page.locator("[data-reply]")).not_to_be_empty()
        expect(page.locator("[data-served]")).to_contain_text("#1")
        shot("playground")

        # -- the request is in the live log ------------------------------------------------------------
        page.click("nav a[data-page=logs]")
        first = page.locator("table.logs tbody tr[data-log]").first
        expect(first).to_contain_text("anthropic")
        expect(first).to_contain_text("#1")
        first.click()
        expect(page.locator(".modal pre.detail")).to_contain_text('"dialect": "anthropic"')
        shot("logs-detail")
        page.keyboard.press("Escape")
        shot("logs")

        # -- Settings: the load-balancing mode reaches config.json ---------------------------------
        page.click("nav a[data-page=settings]")
        page.select_option("select[name=loadBalancing]", "random")
        page.select_option("select[name=overflowPolicy]", "trim")
        page.fill("input[name=minIntervalPerCredential]", "0.2")
        page.fill("textarea[name=modelFallbacks]", '{"claude-opus-4-8": ["claude-sonnet-4-6"]}')
        page.uncheck("input[name=webSearch]")
        page.click("form.settings button[type=submit]")
        expect(page.locator(".notice.ok")).to_be_visible()
        saved = json.loads((gw.credentials_path.parent / "config.json").read_text())
        assert (saved["loadBalancing"], saved["overflowPolicy"], saved["minIntervalPerCredential"]) == ("random", "trim", 0.2)
        assert saved["webSearch"] == "off" and gw.app.state.gateway.settings.web_search == "off"
        assert saved["modelFallbacks"] == {"claude-opus-4-8": ["claude-sonnet-4-6"]}
        live = gw.app.state.gateway.settings
        assert (live.load_balancing, live.min_interval_per_credential) == ("random", 0.2)
        page.fill("textarea[name=modelFallbacks]", '{"claude-opus-4-8": ["not-a-model-q"]}')
        page.click("form.settings button[type=submit]")
        expect(page.locator(".notice.error")).to_contain_text("not-a-model-q")
        page.fill("textarea[name=modelFallbacks]", "{}")
        page.fill("input[name=minIntervalPerCredential]", "0")
        page.select_option("select[name=loadBalancing]", "balanced")
        page.check("input[name=webSearch]")
        page.click("form.settings button[type=submit]")
        expect(page.locator(".notice.ok")).to_be_visible()
        saved = json.loads((gw.credentials_path.parent / "config.json").read_text())
        assert saved["loadBalancing"] == "balanced"
        assert gw.app.state.gateway.settings.load_balancing == "balanced"
        assert gw.app.state.gateway.settings.web_search == "on"
        shot("settings")

        # -- log in by device code through the dialog (Builder ID, then IdC), approved at the fake ----
        page.click("nav a[data-page=accounts]")
        logged_in = {}
        for method in ("builder-id", "idc"):
            open_login_tab(page)
            page.select_option(".modal select[name=method]", method)
            if method == "idc":
                page.fill(".modal input[name=startUrl]", "https://my-org.awsapps.com/start")
                page.fill(".modal input[name=loginRegion]", "eu-central-1")
            page.click(".modal button[data-action=start-login]")
            code = page.locator(".modal [data-user-code]")
            expect(code).to_have_text(re.compile(r"^[A-Z]{4}-[A-Z]{4}$"))
            expect(page.locator(".modal [role=status]")).to_be_visible()  # waiting for approval
            shot(f"login-{method}")
            r = httpx.post(fake.url("/__fake/logins/approve"), json={"userCode": code.inner_text()}, timeout=10)
            assert r.status_code == 200 and r.json() == {"approved": True}, r.text
            done = page.locator(".modal .notice.ok")
            expect(done).to_contain_text("Logged in", timeout=20000)
            logged_in[method] = int(re.search(r"#(\d+)", done.inner_text()).group(1))
            page.keyboard.press("Escape")
            expect(page.locator(".modal")).to_have_count(0)
            row = page.locator(f"tr[data-id='{logged_in[method]}']")
            expect(row).to_have_attribute("data-status", "active")
        saved = {c.get("clientId"): c for c in json.loads(gw.credentials_path.read_text()) if c.get("clientId")}
        assert sum(c["authMethod"] == "idc" for c in saved.values()) == 3  # the seeded IdC and two logins
        shot("accounts-after-login")

        # -- the Builder ID account serves a playground request (every other one switched off) --------
        for cid in (1, 2, 3, logged_in["idc"]):
            row = page.locator(f"tr[data-id='{cid}']")
            row.locator("input[role=switch]").click()
            expect(row).to_have_attribute("data-status", "disabled")
        page.click("nav a[data-page=playground]")
        page.fill("textarea[name=message]", "Hello from the Builder ID login")
        page.click("form button[type=submit]")
        expect(page.locator("[data-served]")).to_contain_text(f"#{logged_in['builder-id']}")
        expect(page.locator("[data-reply]")).not_to_be_empty()
        served = [r for r in fake.requests if r["path"] == "/generateAssistantResponse"][-1]
        builder = [c for c in saved.values() if c["clientId"] != accounts[1]["client_id"] and c.get("authRegion") != "eu-central-1"]
        assert len(builder) == 1, saved
        builder = builder[0]
        assert served["account"] == fake.account(builder["refreshToken"])["id"]
        shot("playground-login-account")

        # -- social login by the pasted-URL fallback ------------------------------------------------------
        page.click("nav a[data-page=accounts]")
        open_login_tab(page)
        page.select_option(".modal select[name=method]", "social")
        page.select_option(".modal select[name=provider]", "github")
        page.click(".modal button[data-action=start-login]")
        link = page.locator(".modal a[data-authorize]")
        expect(link).to_be_visible()
        authorize = link.get_attribute("href")
        assert httpx.get(authorize, timeout=10).status_code == 200  # the person opens the sign-in page
        state = parse_qs(urlsplit(authorize).query)["state"][0]
        r = httpx.post(fake.url("/__fake/logins/approve"), json={"state": state}, timeout=10)
        assert r.status_code == 200, r.text
        redirect = r.json()["redirect"]
        auth_code = parse_qs(urlsplit(redirect).query)["code"][0]  # one-use, but never to be echoed
        page.fill(".modal input[name=callbackUrl]", redirect)
        shot("login-social")
        page.click(".modal button[data-action=send-callback]")
        done = page.locator(".modal .notice.ok")
        expect(done).to_contain_text("Logged in")
        social_id = int(re.search(r"#(\d+)", done.inner_text()).group(1))
        page.keyboard.press("Escape")
        expect(page.locator(f"tr[data-id='{social_id}']")).to_have_attribute("data-status", "active")

        for name in ("keys", "connect"):
            page.click(f"nav a[data-page={name}]")
            shot(name)
        page.click("nav a[data-page=keys]")
        page.fill("input[name=keyName]", "browser key")
        page.select_option("select[name=keyCredential]", str(social_id))  # pinned to the social login's account
        page.click("form.inline-form button[type=submit]")
        expect(page.locator(".modal pre.secret")).to_contain_text("")
        shot("keys-created")
        page.click(".modal button.primary")
        pinned = [k for k in gw.app.state.gateway.keys.all() if k.name == "browser key"]
        assert pinned and pinned[0].credential == str(social_id), pinned

        # -- 中文 switches the labels, and is remembered ----------------------------------------------
        page.click("button:has-text('中文')")
        expect(page.locator("nav a[data-page=accounts]")).to_have_text("账号")
        page.reload()
        expect(page.locator("nav a[data-page=settings]")).to_have_text("设置")
        page.click("nav a[data-page=overview]")
        expect(page.locator(".kpi").first).to_be_visible()
        shot("overview-zh")
        for name in ("accounts", "keys", "playground", "logs", "settings", "connect"):
            page.click(f"nav a[data-page={name}]")
            expect(page.locator(f"main[data-page={name}]")).to_be_visible()
            shot(f"{name}-zh")
        page.click("nav a[data-page=accounts]")
        page.click("button[data-action=add]")
        expect(page.locator(".modal h2, .modal .title").first).to_have_text("添加账号")
        shot("accounts-add-dialog-zh")
        # keyboard: arrows move between the tabs (wrapping), Tab stays inside the dialog
        page.focus(".modal [role=tab][aria-selected=true]")
        page.keyboard.press("ArrowRight")
        expect(page.locator(".modal [data-tab='IdC / Builder ID']")).to_have_attribute("aria-selected", "true")
        assert page.evaluate("document.activeElement.dataset.tab") == "IdC / Builder ID"
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        expect(page.locator(".modal [data-tab='Log in']")).to_have_attribute("aria-selected", "true")
        for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
            page.keyboard.press(key)
            assert page.evaluate("!!document.activeElement.closest('.modal')"), key
        shot("login-zh")
        page.keyboard.press("Escape")
        page.click("button:has-text('深色')")
        page.click("nav a[data-page=overview]")
        shot("overview-zh-dark")
        expect(page.locator("html[data-theme=dark]")).to_have_count(1)
        page.click("button:has-text('浅色')")
        page.click("button:has-text('English')")
        expect(page.locator("nav a[data-page=accounts]")).to_have_text("Accounts")

        # -- the connection-lost banner: the stream ends and cannot come back, then can ---------------
        import kiro_gateway.console.events as events

        page.route("**/admin/events", lambda route: route.abort())
        old, events.MAX_AGE = events.MAX_AGE, 0
        try:
            expect(page.locator(".banner")).to_be_visible()
            shot("connection-lost")
        finally:
            events.MAX_AGE = old
        page.unroute("**/admin/events")
        expect(page.locator(".banner")).to_have_count(0, timeout=20000)

        # the live stream's payload, fetched with the browser's own session, is checked too
        with httpx.Client(base_url=gw.base_url, cookies={"kg_console": cookie["value"]}, timeout=10) as c:
            with c.stream("GET", "/admin/events") as r:
                seen = b""
                for chunk in r.iter_bytes():
                    seen += chunk
                    if b"event: credentials" in seen and seen.endswith(b"\n\n"):
                        break
            bodies.append(("/admin/events", seen))

        # -- sign out -------------------------------------------------------------------------------------
        page.click("button:has-text('中文')")
        page.click("button:has-text('退出登录')")
        expect(page.locator("input[name=key]")).to_be_visible()
        shot("signin-zh")
        page.click("button:has-text('English')")
        browser.close()

    assert len(bodies) > 20
    login_secrets = _login_secrets(fake) + [auth_code]
    assert len(login_secrets) >= 5  # two clients, two device codes, the authorization code
    assert any(b"/api/admin/logins" in url.encode() for url, _ in bodies)
    secrets = _secrets(fake, accounts + [new_acct, batch_acct]) + login_secrets
    leaks = [(url, s[:6]) for url, body in bodies for s in secrets if s.encode() in body]
    assert not leaks, f"secrets in responses: {leaks}"
    assert any(re.search(rb"refreshTokenHash", b) for _, b in bodies)  # the views were seen


def test_disabled_console_shows_how_to_enable(fake, tmp_path):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    gw = start_gateway(fake, tmp_path)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(gw.base_url + "/admin/")
            expect(page.locator("h1")).to_have_text("The console is disabled")
            expect(page.locator("pre")).to_contain_text("adminApiKey")
            assert page.locator("input[type=password]").count() == 0
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "disabled.png"))
            browser.close()
    finally:
        gw.server.stop()


def test_five_hundred_accounts_page_and_update_one_row_at_a_time(fake, tmp_path):
    """500 credentials: 50 a page, search and paging, and a change to one account repaints one row."""
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    creds = [{"refreshToken": fake.add_account()["refresh_token"], "authMethod": "social", "name": f"acct {i + 1:03d}"}
             for i in range(500)]
    gw = start_gateway(fake, tmp_path, creds, admin_api_key=ADMIN, usage_on_start=False)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(15000)
            page.goto(gw.base_url + "/admin/#/accounts")
            page.fill("input[name=key]", ADMIN)
            page.press("input[name=key]", "Enter")
            rows = page.locator("table.accounts tbody tr")
            expect(rows).to_have_count(50)
            expect(page.locator(".pager")).to_contain_text("1 / 10")
            page.click(".pager button:has-text('Next')")
            page.click(".pager button:has-text('Next')")
            expect(page.locator(".pager")).to_contain_text("3 / 10")
            row = page.locator("tr[data-id='123']")
            expect(row).to_have_attribute("data-status", "active")
            expect(page.locator("tr[data-id='150'] td.quota .bar")).to_be_visible(timeout=30000)  # the page's balances are in
            page.wait_for_timeout(2500)  # and the refreshes they caused have reached the page (events tick each second)
            # Watch the table: which rows does a change to #123, made elsewhere, touch?
            page.evaluate("""() => {
                window.touched = new Set();
                new MutationObserver((ms) => ms.forEach((m) => {
                    const tr = (m.target.nodeType === 1 ? m.target : m.target.parentElement).closest('tr[data-id]');
                    if (tr) window.touched.add(tr.dataset.id);
                    [...m.addedNodes, ...m.removedNodes].forEach((n) => n.dataset && n.dataset.id
                                                                   && window.touched.add(n.dataset.id));
                })).observe(document.querySelector('table.accounts tbody'),
                            {subtree: true, childList: true, attributes: true, characterData: true});
            }""")
            r = httpx.post(gw.base_url + "/api/admin/credentials/123/disabled", json={"disabled": True},
                           headers={"x-api-key": ADMIN}, timeout=10)
            assert r.status_code == 200, r.text
            expect(row).to_have_attribute("data-status", "disabled")  # over the live event stream
            page.wait_for_timeout(500)
            assert page.evaluate("[...window.touched]") == ["123"]
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "accounts-500.png"))
            page.fill("input[type=search]", "acct 042")
            expect(rows).to_have_count(1)
            expect(page.locator(".pager")).to_contain_text("1 / 1")
            browser.close()
    finally:
        gw.server.stop()
