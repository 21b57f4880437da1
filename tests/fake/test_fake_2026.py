"""The fake Kiro as of 2026: two hosts with their ARN rules and request shapes, profile listing,
per-account models with token limits, the new stream events and the new throttling answers."""

from __future__ import annotations

import orjson
import pytest
from fakekiro_support import Result, body

from kiro_gateway.fake.catalog import ERRORS


async def post(http, fake, path, payload, token, headers=None):
    hdrs = {"Content-Type": "application/json", "Authorization": f"Bearer {token}", **(headers or {})}
    if token is None:
        del hdrs["Authorization"]
    async with http.post(fake.url(path), data=orjson.dumps(payload), headers=hdrs) as resp:
        return Result(resp.status, dict(resp.headers), await resp.read())


def with_arn(b, arn):
    return b | {"profileArn": arn} if arn else b


@pytest.fixture
def accounts(fake):
    return {
        "builder": fake.add_account(id="builder", auth="idc", builder_id=True),
        "social": fake.add_account(id="social"),
        "idc": fake.add_account(id="idc", auth="idc", profile_region="eu-central-1"),
        "key": fake.add_account(id="key", auth="api_key"),
    }


async def test_arn_rules_per_host(fake, http, accounts):
    b, s = accounts["builder"], accounts["social"]
    # Builder ID: the legacy host serves it without an ARN; the branded host wants one it has not.
    assert (await post(http, fake, "/generateAssistantResponse", body("hi"), b["access_token"])).status == 200
    r = await post(http, fake, "/runtime/generateAssistantResponse", body("hi"), b["access_token"])
    assert r.status == 400 and "profileArn is required" in r.json["message"]
    made_up = "arn:aws:codewhisperer:us-east-1:000000000000:profile/PLACEHOLDER"
    r = await post(http, fake, "/generateAssistantResponse", with_arn(body("hi"), made_up), b["access_token"])
    assert r.status == 403
    # Social with its ARN: both hosts; without: only the legacy one; someone else's: refused.
    for path in ("/generateAssistantResponse", "/runtime/generateAssistantResponse"):
        r = await post(http, fake, path, with_arn(body("hi"), s["profile_arn"]), s["access_token"])
        assert r.status == 200, path
    r = await post(http, fake, "/runtime/generateAssistantResponse", body("hi"), s["access_token"])
    assert r.status == 400
    r = await post(http, fake, "/runtime/generateAssistantResponse", with_arn(body("hi"), made_up), s["access_token"])
    assert r.status == 403
    assert [q["host"] for q in fake.requests][:2] == ["legacy", "runtime"]


async def test_target_form(fake, http, accounts):
    s = accounts["social"]
    payload = with_arn(body("hi"), s["profile_arn"])
    target = {"x-amz-target": "KiroRuntimeService.GenerateAssistantResponse",
              "Content-Type": "application/x-amz-json-1.0"}
    r = await post(http, fake, "/runtime/", payload, s["access_token"], target)
    assert r.status == 200 and any(k == "assistantResponseEvent" for k, _ in r.events)
    legacy = {"x-amz-target": "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"}
    assert (await post(http, fake, "/", payload, s["access_token"], legacy)).status == 200
    # Each host answers only its own service's targets.
    assert (await post(http, fake, "/runtime/", payload, s["access_token"], legacy)).status == 400
    assert (await post(http, fake, "/", payload, s["access_token"], target)).status == 400


async def test_profile_listing(fake, http, accounts):
    target = {"x-amz-target": "AmazonCodeWhispererService.ListAvailableProfiles"}
    idc = accounts["idc"]
    r = await post(http, fake, "/profiles/us-east-1/", {}, idc["access_token"], target)
    assert (r.status, r.json) == (200, {"profiles": []})
    r = await post(http, fake, "/profiles/eu-central-1/", {}, idc["access_token"], target)
    assert r.status == 200 and [p["arn"] for p in r.json["profiles"]] == [idc["profile_arn"]]
    assert ":eu-central-1:" in idc["profile_arn"]
    r = await post(http, fake, "/profiles/ap-southeast-2/", {}, idc["access_token"], target)
    assert r.status == 404
    other = {"x-amz-target": "KiroManagementService.ListProfiles"}
    r = await post(http, fake, "/profiles/us-east-1/", {}, accounts["social"]["access_token"], other)
    assert r.status == 200 and r.json["profiles"][0]["arn"] == accounts["social"]["profile_arn"]
    r = await post(http, fake, "/profiles/us-east-1/", {}, accounts["builder"]["access_token"], target)
    assert r.status == 403 and "Builder ID" in r.json["message"]
    r = await post(http, fake, "/profiles/us-east-1/", {}, "wrong", target)
    assert r.status == 403


async def test_per_account_models(fake, http):
    a = fake.add_account(id="a", models=["claude-sonnet-4.5", "glm-5"])
    b = fake.add_account(id="b", models={"claude-opus-4.8": {"maxInputTokens": 500000}, "claude-sonnet-4.5": None})
    async with http.get(fake.url("/ListAvailableModels?origin=AI_EDITOR"),
                        headers={"Authorization": f"Bearer {b['access_token']}"}) as resp:
        listed = await resp.json()
    limits = {m["modelId"]: m["tokenLimits"] for m in listed["models"]}
    assert limits == {"claude-opus-4.8": {"maxInputTokens": 500000, "maxOutputTokens": 64000},
                      "claude-sonnet-4.5": {"maxInputTokens": 200000, "maxOutputTokens": 64000}}
    async with http.get(fake.url("/runtime/ListAvailableModels"),
                        headers={"Authorization": f"Bearer {a['access_token']}"}) as resp:
        assert {m["modelId"] for m in (await resp.json())["models"]} == {"claude-sonnet-4.5", "glm-5"}
    opus = body("hi", modelId="claude-opus-4.8")
    r = await post(http, fake, "/generateAssistantResponse", opus, a["access_token"])
    assert r.status == 400 and r.json["reason"] == "INVALID_MODEL_ID"
    assert (await post(http, fake, "/generateAssistantResponse", opus, b["access_token"])).status == 200
    with pytest.raises(ValueError):
        fake.add_account(models="all")


async def test_new_events(fake, http):
    fake.add_script({"steps": [
        {"reasoning": "Let me weigh it.", "signature": "sig-123", "chunks": 2},
        {"text": "Answer."},
        {"event": {"type": "brandNewEvent", "payload": {"x": 1}}},
        {"metadata": {"tokenUsage": {"inputTokens": 12, "outputTokens": 3, "contextUsagePercentage": 1.5},
                      "stopReason": "end_turn"}},
    ]})
    r = await post(http, fake, "/generateAssistantResponse", body("hi"), "t")
    evs = r.events
    kinds = [k for k, _ in evs]
    assert kinds[:2] == ["reasoningContentEvent", "reasoningContentEvent"]
    assert [p for _, p in evs[:2]] == [{"text": "Let me w"}, {"text": "eigh it.", "signature": "sig-123"}]
    assert "brandNewEvent" in kinds and "metadataEvent" in kinds and "meteringEvent" in kinds
    meta = dict(evs)["metadataEvent"]
    assert meta["tokenUsage"]["inputTokens"] == 12


@pytest.mark.parametrize("name", sorted(ERRORS))
async def test_named_errors_per_account(fake, http, name):
    a, b = fake.add_account(id="a"), fake.add_account(id="b")
    fake.add_script({"account": "a", "error": name, "headers": {"Retry-After": "7"}})
    assert (await post(http, fake, "/generateAssistantResponse", body("x"), b["access_token"])).status == 200
    r = await post(http, fake, "/generateAssistantResponse", body("x"), a["access_token"])
    status, payload = ERRORS[name]
    assert (r.status, r.json, r.headers.get("Retry-After")) == (status, payload, "7")
    # fail_with: the same answer until cleared.
    fake.update_account("b", fail_with=name)
    for _ in range(2):
        assert (await post(http, fake, "/generateAssistantResponse", body("x"), b["access_token"])).status == status
    fake.update_account("b", fail_with=None)
    assert (await post(http, fake, "/generateAssistantResponse", body("x"), b["access_token"])).status == 200


async def test_bad_control_input(fake, http):
    async with http.post(fake.url("/__fake/scripts"), json={"error": "NOPE"}) as resp:
        assert resp.status == 400 and "NOPE" in (await resp.json())["error"]
    async with http.post(fake.url("/__fake/accounts"), json={"builder_id": True}) as resp:
        assert resp.status == 400  # Builder ID signs in through IdC
    async with http.post(fake.url("/__fake/accounts"), json={"fail_with": "NOPE"}) as resp:
        assert resp.status == 400
