"""The fake Kiro's MCP endpoint (`POST /mcp` on both hosts): bearer and account checks as chat's,
each host's profile-ARN rule, the JSON-RPC envelope, and deterministic web search results."""

from __future__ import annotations

import orjson
import pytest
from fakekiro_support import Result

from kiro_gateway.fake.mcp import ID_FORMAT, RESULTS_PER_QUERY, search_results

RID = "web_search_tooluse_" + "A1b2C3d4E5f6G7h8I9j0K1" + "_1765113600000_" + "abc123xy"


def call(query="kiro gateway", rid=RID, **over) -> dict:
    body = {"id": rid, "jsonrpc": "2.0", "method": "tools/call",
            "params": {"name": "web_search", "arguments": {"query": query}}}
    return body | over


async def post(http, fake, path, payload, token, headers=None):
    hdrs = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    async with http.post(fake.url(path), data=data, headers=hdrs) as resp:
        return Result(resp.status, dict(resp.headers), await resp.read())


@pytest.fixture
def accounts(fake):
    return {
        "builder": fake.add_account(id="builder", auth="idc", builder_id=True),
        "social": fake.add_account(id="social"),
        "key": fake.add_account(id="key", auth="api_key"),
    }


def results_of(r: Result) -> dict:
    assert r.status == 200, r.raw
    result = r.json["result"]
    assert result["isError"] is False and result["content"][0]["type"] == "text"
    return orjson.loads(result["content"][0]["text"])


async def test_a_search_answers_with_deterministic_results(fake, http, accounts):
    s = accounts["social"]
    arn = {"x-amzn-kiro-profile-arn": s["profile_arn"]}
    r = await post(http, fake, "/mcp", call(), s["access_token"], arn)
    assert r.json["jsonrpc"] == "2.0" and r.json["id"] == RID
    found = results_of(r)
    assert found == search_results("kiro gateway")
    assert found["query"] == "kiro gateway" and found["totalResults"] == RESULTS_PER_QUERY
    first = found["results"][0]
    assert set(first) == {"title", "url", "snippet", "publishedDate", "id", "domain", "maxVerbatimWordLimit",
                          "publicDomain"}
    assert first["url"].startswith("https://" + first["domain"] + "/kiro-gateway/")
    assert isinstance(first["publishedDate"], int) and first["publishedDate"] > 1_600_000_000_000
    again = await post(http, fake, "/mcp", call(), s["access_token"], arn)
    assert results_of(again) == found  # the same query, the same results
    other = results_of(await post(http, fake, "/mcp", call("something else"), s["access_token"], arn))
    assert other["results"][0]["url"] != first["url"]
    rec = [q for q in fake.requests if q["path"] == "/mcp"][0]
    assert rec["host"] == "legacy" and rec["search"] == "kiro gateway" and rec["account"] == "social"


async def test_arn_rules_per_host(fake, http, accounts):
    s, b = accounts["social"], accounts["builder"]
    made_up = "arn:aws:codewhisperer:us-east-1:000000000000:profile/PLACEHOLDER"
    # The branded host reads the ARN from the body's root, and wants it.
    assert (await post(http, fake, "/runtime/mcp", call(), s["access_token"])).status == 400
    r = await post(http, fake, "/runtime/mcp", call(), s["access_token"], {"x-amzn-kiro-profile-arn": s["profile_arn"]})
    assert r.status == 400 and "profileArn is required" in r.json["message"]  # a header is not enough there
    assert results_of(await post(http, fake, "/runtime/mcp", call() | {"profileArn": s["profile_arn"]},
                                 s["access_token"]))
    assert (await post(http, fake, "/runtime/mcp", call() | {"profileArn": made_up}, s["access_token"])).status == 403
    # The legacy host reads the header; without one it serves the account (Builder ID has no profile).
    assert results_of(await post(http, fake, "/mcp", call(), s["access_token"]))
    assert results_of(await post(http, fake, "/mcp", call(), b["access_token"]))
    assert (await post(http, fake, "/mcp", call(), b["access_token"], {"x-amzn-kiro-profile-arn": made_up})).status == 403
    assert (await post(http, fake, "/runtime/mcp", call(), b["access_token"])).status == 400
    assert [q["host"] for q in fake.requests][:2] == ["runtime", "runtime"]


async def test_bearer_and_account_states_as_chat(fake, http, accounts):
    s, k = accounts["social"], accounts["key"]
    assert (await post(http, fake, "/mcp", call(), None)).status == 401
    assert (await post(http, fake, "/mcp", call(), "not-a-token")).status == 403
    # An API key is a bearer only with tokentype: API_KEY.
    assert (await post(http, fake, "/mcp", call(), k["access_token"])).status == 403
    assert results_of(await post(http, fake, "/mcp", call(), k["access_token"], {"tokentype": "API_KEY"}))
    fake.update_account("social", expires_at=1.0)
    r = await post(http, fake, "/mcp", call(), s["access_token"])
    assert r.status == 403 and "bearer token" in r.json["message"]
    fake.update_account("social", expires_at=4e9, suspended=True)
    assert (await post(http, fake, "/mcp", call(), s["access_token"])).status == 403
    fake.update_account("social", suspended=False, quota_exhausted=True)
    r = await post(http, fake, "/mcp", call(), s["access_token"])
    assert r.status == 402 and r.json["reason"] == "MONTHLY_REQUEST_COUNT"


@pytest.mark.parametrize("body,code,words", [
    (b"{not json", -32700, "Parse error"),
    (call(jsonrpc="1.0"), -32600, "jsonrpc"),
    (call(rid="web_search_tooluse_short_1_x"), -32600, "id"),
    (call(rid=7), -32600, "id"),
    (call(method="tools/list"), -32601, "Method not found"),
    (call(params={"name": "web_fetch", "arguments": {"query": "x"}}), -32602, "Unknown tool"),
    (call(params={"name": "web_search", "arguments": {}}), -32602, "query is required"),
    (call(query="   "), -32602, "query is required"),
    (call(params="web_search"), -32602, "params"),
    (call(query="x" * 2001), -32602, "longer than"),
])
async def test_json_rpc_faults(fake, http, body, code, words):
    r = await post(http, fake, "/mcp", body, "any-token")  # open mode: any bearer
    assert r.status in (200, 400)
    assert r.json["jsonrpc"] == "2.0" and "result" not in r.json
    assert r.json["error"]["code"] == code and words in r.json["error"]["message"]


async def test_steering_words(fake, http):
    assert results_of(await post(http, fake, "/mcp", call("fake:empty nothing"), "t"))["results"] == []
    r = await post(http, fake, "/mcp", call("fake:error please"), "t")
    assert r.status == 200 and r.json["result"]["isError"] is True
    assert "failed" in r.json["result"]["content"][0]["text"]
    assert (await post(http, fake, "/mcp", call("fake:throttle now"), "t")).status == 429


def test_id_format():
    assert ID_FORMAT.match(RID)
    assert not ID_FORMAT.match(RID.replace("_abc123xy", "_ABC123XY"))
