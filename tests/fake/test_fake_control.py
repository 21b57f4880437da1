"""The /__fake/ control API over HTTP, the recorder, in-flight tracking, and the CLI entry point."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import orjson
from fakekiro_support import body, generate, text_of

from kiro_gateway.fake import FakeKiro


async def call(http, fake, method, path, payload=None):
    async with http.request(method, fake.url(path), json=payload) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_scripts_over_http(fake, http):
    status, data = await call(http, fake, "POST", "/__fake/scripts", {"steps": [{"text": "one"}]})
    assert (status, data) == (200, {"added": 1, "pending": 1})
    status, data = await call(http, fake, "POST", "/__fake/scripts", [{"match": "z"}, {"match": "y"}])
    assert data == {"added": 2, "pending": 3}
    status, listed = await call(http, fake, "GET", "/__fake/scripts")
    assert [s.get("match") for s in listed] == [None, "z", "y"]
    assert text_of((await generate(http, fake, body("q"))).events) == "one"
    status, data = await call(http, fake, "DELETE", "/__fake/scripts")
    assert data == {"cleared": 2}
    assert fake.scripts == []


async def test_accounts_over_http(fake, http):
    status, acct = await call(http, fake, "POST", "/__fake/accounts", {"id": "alpha", "subscription": "KIRO FREE"})
    assert status == 200 and acct["id"] == "alpha" and acct["access_token"]
    status, accts = await call(http, fake, "POST", "/__fake/accounts", [{}, {"auth": "idc"}])
    assert status == 200 and accts[1]["client_id"]
    status, listed = await call(http, fake, "GET", "/__fake/accounts")
    assert [a["id"] for a in listed] == ["alpha", "acct-2", "acct-3"]
    status, err = await call(http, fake, "POST", "/__fake/accounts", {"bogus_field": 1})
    assert status == 400 and "bogus_field" in err["error"]
    status, err = await call(http, fake, "POST", "/__fake/accounts", {"suspended": "yes"})
    assert status == 400 and "suspended" in err["error"]
    status, err = await call(http, fake, "PATCH", "/__fake/accounts/alpha", {"expires_at": "tomorrow"})
    assert status == 400 and "expires_at" in err["error"]
    status, changed = await call(http, fake, "PATCH", "/__fake/accounts/alpha", {"suspended": True})
    assert changed["suspended"] is True
    assert (await generate(http, fake, body("x"), token=acct["access_token"])).status == 403
    status, one = await call(http, fake, "GET", f"/__fake/accounts/{acct['refresh_token']}")
    assert (status, one["id"], one["refresh_count"]) == (200, "alpha", 0)
    assert (await call(http, fake, "GET", "/__fake/accounts/nobody"))[0] == 404
    await call(http, fake, "DELETE", "/__fake/accounts")
    assert fake.accounts == []
    assert (await generate(http, fake, body("x"), token="anything")).status == 200  # open again


async def test_requests_recorded(fake, http):
    await generate(http, fake, body("first"), token="tok-1", headers={"x-amzn-kiro-agent-mode": "vibe"})
    await generate(http, fake, body(""), token="tok-2")
    status, recs = await call(http, fake, "GET", "/__fake/requests")
    assert [r["token"] for r in recs] == ["tok-1", "tok-2"]
    first = recs[0]
    assert first["path"] == "/generateAssistantResponse" and first["method"] == "POST"
    assert first["headers"]["x-amzn-kiro-agent-mode"] == "vibe"
    assert "authorization" not in first["headers"]
    assert first["body"]["conversationState"]["currentMessage"]["userInputMessage"]["content"] == "first"
    assert (first["status"], first["verdict"], first["rule"]) == (200, "ok", None)
    assert (recs[1]["status"], recs[1]["rule"]) == (400, "current_content_empty")
    assert first["size"] == len(orjson.dumps(body("first")))
    status, last = await call(http, fake, "GET", "/__fake/requests?limit=1")
    assert [r["token"] for r in last] == ["tok-2"]
    await call(http, fake, "DELETE", "/__fake/requests")
    assert fake.requests == []


async def test_recording_bounded_and_switchable(fake, http):
    fake.update_settings(record_bodies=False)
    await generate(http, fake, body("x"))
    assert fake.requests[-1]["body"] is None and fake.requests[-1]["status"] == 200
    status, settings = await call(http, fake, "POST", "/__fake/settings", {"record": False})
    assert settings["record"] is False
    await generate(http, fake, body("x"))
    assert len(fake.requests) == 1
    fake.update_settings(record=True)
    payload = orjson.dumps(body("x"))
    conn = __import__("aiohttp").TCPConnector(limit=16)
    async with __import__("aiohttp").ClientSession(connector=conn) as session:
        async def one():
            async with session.post(fake.url("/generateAssistantResponse"), data=payload,
                                    headers={"Authorization": "Bearer t"}) as r:
                await r.read()
        await asyncio.gather(*(one() for _ in range(1005)))
    assert len(fake.requests) == 1000
    assert fake.stats()["paths"]["/generateAssistantResponse"] == 1007


async def test_settings_and_reset_over_http(fake, http):
    status, settings = await call(http, fake, "POST", "/__fake/settings", {"default_chunks": 3, "chunk_delay": 0})
    assert settings["default_chunks"] == 3
    evs = (await generate(http, fake, body("hello there"))).events
    assert len([n for n, _ in evs if n == "assistantResponseEvent"]) == 3
    status, err = await call(http, fake, "POST", "/__fake/settings", {"chunks": 3})
    assert status == 400
    status, _ = await call(http, fake, "GET", "/__fake/settings")
    assert status == 200
    fake.add_script({"status": 500})
    await call(http, fake, "POST", "/__fake/reset")
    stats = fake.stats()
    assert stats["scripts_pending"] == 0 and stats["paths"] == {} and fake.requests == []


async def test_stats_counts(fake, http):
    await generate(http, fake, body("x"))
    await generate(http, fake, body("x"), token=None)
    async with http.get(fake.url("/nope")) as resp:
        assert resp.status == 404
    await call(http, fake, "GET", "/__fake/requests")
    status, stats = await call(http, fake, "GET", "/__fake/stats")
    assert stats["paths"] == {"/generateAssistantResponse": 2, "/nope": 1}
    assert stats["statuses"] == {"200": 1, "401": 1}


async def test_inflight_max_with_concurrent_slow_requests(fake, http):
    fake.add_script({"times": -1, "token": "slow", "steps": [{"text": "a"}, {"delay": 0.3}, {"text": "b"}]})
    acct_free = asyncio.gather(*(generate(http, fake, body("x"), token="slow") for _ in range(5)),
                               generate(http, fake, body("x"), token="fast"))
    await asyncio.sleep(0.15)
    during = fake.stats()
    assert during["inflight"]["slow"] == 5
    results = await acct_free
    assert all(r.status == 200 for r in results)
    after = fake.stats()
    assert after["inflight"]["slow"] == 0
    assert after["max_inflight"] == {"slow": 5, "fast": 1}


async def test_inflight_per_account_survives_refresh(fake, http):
    acct = fake.add_account()
    fake.update_settings(first_byte_delay=0.3)
    first = asyncio.ensure_future(generate(http, fake, body("x"), token=acct["access_token"]))
    await asyncio.sleep(0.1)
    async with http.post(fake.url("/refreshToken"), json={"refreshToken": acct["refresh_token"]}) as resp:
        new_token = (await resp.json())["accessToken"]
    second = await generate(http, fake, body("x"), token=new_token)
    assert (await first).status == 200 and second.status == 200
    stats = fake.stats()
    assert stats["max_inflight_accounts"] == {acct["id"]: 2}
    assert stats["max_inflight"] == {acct["access_token"]: 1, new_token: 1}


def test_context_manager_and_custom_models():
    with FakeKiro(models=["claude-sonnet-4.5"], default_chunks=2) as fk:
        assert fk.port > 0 and fk.base_url == f"http://127.0.0.1:{fk.port}"
        assert fk.settings["default_chunks"] == 2
        import urllib.request

        req = urllib.request.Request(fk.url("/ListAvailableModels"), headers={"Authorization": "Bearer t"})
        models = orjson.loads(urllib.request.urlopen(req).read())["models"]
        assert [m["modelId"] for m in models] == ["claude-sonnet-4.5"]
    assert fk._thread is None


def test_cli_serves_until_terminated():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "kiro_gateway.fake", "--port", str(port), "--chunks", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert b"listening" in proc.stdout.readline()
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{port}/generateAssistantResponse",
                                     data=orjson.dumps(body("cli")), headers={"Authorization": "Bearer t"})
        from fakekiro_support import events

        evs = events(urllib.request.urlopen(req, timeout=5).read())
        assert len([n for n, _ in evs if n == "assistantResponseEvent"]) == 2
    finally:
        proc.terminate()
        start = time.time()
        proc.wait(timeout=5)
    assert proc.returncode == 0 and time.time() - start < 5
