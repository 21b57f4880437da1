"""Named client API keys: managed in the admin API, limited per key, answered in each client's dialect."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from support import start_gateway

ADMIN = "admin-key-for-key-tests"
MODEL = "claude-sonnet-4-6"
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gw(fake, clean_fake, tmp_path):
    acct = fake.add_account()
    g = start_gateway(fake, tmp_path, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                      admin_api_key=ADMIN, usage_on_start=False)
    g.admin = httpx.Client(base_url=g.base_url + "/api/admin", headers={"x-api-key": ADMIN}, timeout=10)
    yield g
    g.admin.close()
    g.server.stop()


def new_key(gw, name: str, **limits) -> str:
    r = gw.admin.post("/keys", json={"name": name, **limits})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def test_create_list_masked_update_delete(gw, tmp_path):
    r = gw.admin.post("/keys", json={"name": "alice", "requestsPerMinute": 5, "tokensPerDay": 1000})
    assert r.status_code == 201
    made = r.json()
    secret = made["key"]
    assert secret.startswith("kgk_") and len(secret) > 40 and made["hint"].startswith(secret[:8])
    listed = gw.admin.get("/keys")
    assert secret not in listed.text and listed.json()["keys"][0]["requestsPerMinute"] == 5
    assert secret.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("state"))
    kid = made["id"]
    r = gw.admin.patch(f"/keys/{kid}", json={"requestsPerMinute": None, "name": "alice2"})
    assert r.status_code == 200 and r.json()["requestsPerMinute"] is None and r.json()["tokensPerDay"] == 1000
    assert r.json()["name"] == "alice2"
    for bad, status in (({}, 400), ({"name": ""}, 400), ({"name": "a/b"}, 400), ({"name": "x" * 65}, 400),
                        ({"name": "bob", "requestsPerMinute": "many"}, 400), ({"name": "bob", "tokensPerDay": -1}, 400),
                        ({"name": "alice2"}, 409)):
        r = gw.admin.post("/keys", json=bad)
        assert r.status_code == status and set(r.json()["error"]) == {"type", "message"}, (bad, r.text)
    assert gw.admin.post("/keys", content=b"{not json").status_code == 400
    assert gw.admin.patch("/keys/nope", json={"name": "z"}).status_code == 404
    assert gw.admin.patch(f"/keys/{kid}", json={"name": None}).status_code == 400
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=secret, max_retries=0)
    client.messages.create(model=MODEL, max_tokens=20, messages=MSG)
    usage = gw.admin.get("/keys").json()["keys"][0]["usageToday"]
    assert usage["requests"] == 1 and usage["tokensIn"] > 0 and usage["tokensOut"] > 0
    assert gw.admin.get("/logs").json()["items"][0]["key"] == "alice2"
    assert gw.admin.delete(f"/keys/{kid}").status_code == 200
    assert gw.admin.delete(f"/keys/{kid}").status_code == 404
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model=MODEL, max_tokens=20, messages=MSG)


def test_a_key_over_its_rpm_gets_429_in_its_own_dialect_and_others_do_not(gw):
    limited = new_key(gw, "limited", requestsPerMinute=2)
    free = new_key(gw, "free")
    ac = anthropic.Anthropic(base_url=gw.base_url, api_key=limited, max_retries=0)
    for _ in range(2):
        ac.messages.create(model=MODEL, max_tokens=20, messages=MSG)
    with pytest.raises(anthropic.RateLimitError) as exc:
        ac.messages.create(model=MODEL, max_tokens=20, messages=MSG)
    err = exc.value
    assert err.status_code == 429 and err.body["error"]["type"] == "rate_limit_error" and "limited" in err.message
    assert 0 < int(err.response.headers["retry-after"]) <= 60
    oc = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=limited, max_retries=0)
    with pytest.raises(openai.RateLimitError) as oexc:
        oc.chat.completions.create(model=MODEL, messages=MSG)
    assert oexc.value.status_code == 429 and oexc.value.code == "rate_limit_exceeded"
    assert oexc.value.body["type"] == "rate_limit_error" and "retry-after" in oexc.value.response.headers
    r = httpx.post(gw.base_url + f"/v1beta/models/{MODEL}:generateContent", headers={"x-goog-api-key": limited},
                   json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    # The other key, and the gateway's own apiKey, are untouched.
    for key in (free, gw.api_key):
        c = anthropic.Anthropic(base_url=gw.base_url, api_key=key, max_retries=0)
        for _ in range(3):
            assert c.messages.create(model=MODEL, max_tokens=20, messages=MSG).content
        assert openai.OpenAI(base_url=gw.base_url + "/v1", api_key=key, max_retries=0).chat.completions.create(
            model=MODEL, messages=MSG).choices
    limited_rows = gw.admin.get("/logs", params={"key": "limited"}).json()
    assert [i["status"] for i in limited_rows["items"]] == [429, 429, 429, 200, 200]
    assert all(i["error"] == "rate_limit" for i in limited_rows["items"][:3])


def test_tokens_per_day(gw):
    key = new_key(gw, "frugal", tokensPerDay=1)
    c = anthropic.Anthropic(base_url=gw.base_url, api_key=key, max_retries=0)
    c.messages.create(model=MODEL, max_tokens=20, messages=MSG)  # allowed: nothing spent yet
    with pytest.raises(anthropic.RateLimitError) as exc:
        c.messages.create(model=MODEL, max_tokens=20, messages=MSG)
    assert "today" in exc.value.message and 0 < int(exc.value.response.headers["retry-after"]) <= 86400
    kid = gw.admin.get("/keys").json()["keys"][0]["id"]
    assert gw.admin.patch(f"/keys/{kid}", json={"tokensPerDay": 0}).status_code == 200  # 0: no limit
    c.messages.create(model=MODEL, max_tokens=20, messages=MSG)
