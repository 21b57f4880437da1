"""Bearer checks, account states, token refresh (social and IdC), usage limits, model list (docs/kiro-protocol.md, “Authentication and refresh” / “Usage limits” / “Models”)."""

from __future__ import annotations

import time

import pytest
from fakekiro_support import body, generate, text_of

BEARER_INVALID = {
    "message": "The bearer token included in the request is invalid.",
    "__type": "com.amazon.aws.codewhisperer#AccessDeniedException",
}
INVALID_GRANT = {"error": "invalid_grant", "error_description": "Invalid refresh token provided"}


async def post_json(http, fake, path, payload):
    async with http.post(fake.url(path), json=payload) as resp:
        return resp.status, await resp.json(content_type=None)


async def get_json(http, fake, path, token=None, headers=None):
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    async with http.get(fake.url(path), headers=hdrs) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_open_mode_accepts_any_bearer(fake, http):
    for token in ("a", "another-token"):
        res = await generate(http, fake, body("hi"), token=token)
        assert res.status == 200
    assert fake.requests[-1]["token"] == "another-token"
    assert "authorization" not in fake.requests[-1]["headers"]


async def test_missing_or_empty_bearer(fake, http):
    assert (await generate(http, fake, body("hi"), token=None)).status == 401
    res = await generate(http, fake, body("hi"), token=None, headers={"Authorization": "Bearer "})
    assert (res.status, res.json) == (403, BEARER_INVALID)
    res = await generate(http, fake, body("hi"), token=None, headers={"Authorization": "Basic abc"})
    assert res.status == 403


async def test_registered_account_only(fake, http):
    acct = fake.add_account()
    assert len(acct["refresh_token"]) >= 100
    ok = await generate(http, fake, body("hi"), token=acct["access_token"])
    assert ok.status == 200
    assert fake.requests[-1]["account"] == acct["id"]
    res = await generate(http, fake, body("hi"), token="someone-else")
    assert (res.status, res.json) == (403, BEARER_INVALID)
    assert fake.requests[-1]["verdict"] == "auth"


async def test_expired_token(fake, http):
    acct = fake.add_account(expires_at=time.time() - 5)
    res = await generate(http, fake, body("hi"), token=acct["access_token"])
    assert (res.status, res.json) == (403, BEARER_INVALID)


async def test_suspended(fake, http):
    acct = fake.add_account(suspended=True)
    res = await generate(http, fake, body("hi"), token=acct["access_token"])
    assert res.status == 403
    assert res.json == {"message": "Your account is temporarily suspended.", "reason": "TEMPORARILY_SUSPENDED"}


async def test_quota_exhausted_and_toggled(fake, http):
    acct = fake.add_account(quota_exhausted=True)
    res = await generate(http, fake, body("hi"), token=acct["access_token"])
    assert (res.status, res.json) == (402, {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"})
    fake.update_account(acct["id"], quota_exhausted=False)
    assert (await generate(http, fake, body("hi"), token=acct["access_token"])).status == 200


async def test_api_key_account_needs_tokentype(fake, http):
    acct = fake.add_account(auth="api_key")
    assert acct["access_token"].startswith("ksk_")
    assert (await generate(http, fake, body("hi"), token=acct["access_token"])).status == 403
    res = await generate(http, fake, body("hi"), token=acct["access_token"], headers={"tokentype": "API_KEY"})
    assert res.status == 200


async def test_social_refresh(fake, http):
    acct = fake.add_account(expires_at=time.time() - 1)
    status, data = await post_json(http, fake, "/refreshToken", {"refreshToken": acct["refresh_token"]})
    assert status == 200
    assert set(data) == {"accessToken", "refreshToken", "profileArn", "expiresIn"}
    assert data["expiresIn"] == 3600 and data["profileArn"] == acct["profile_arn"]
    assert data["refreshToken"] == acct["refresh_token"]  # no rotation by default
    assert data["accessToken"] != acct["access_token"]
    # the new token works, the old one no longer does
    assert (await generate(http, fake, body("hi"), token=data["accessToken"])).status == 200
    assert (await generate(http, fake, body("hi"), token=acct["access_token"])).status == 403
    assert fake.refresh_count(acct["refresh_token"]) == 1
    assert fake.refresh_count(acct) == 1
    assert fake.stats()["refresh_counts"] == {acct["id"]: 1}


async def test_refresh_rotation(fake, http):
    acct = fake.add_account(rotate_refresh_token=True)
    status, data = await post_json(http, fake, "/refreshToken", {"refreshToken": acct["refresh_token"]})
    assert status == 200 and data["refreshToken"] != acct["refresh_token"]
    # the old refresh token is spent
    status, err = await post_json(http, fake, "/refreshToken", {"refreshToken": acct["refresh_token"]})
    assert (status, err) == (400, INVALID_GRANT)
    status, again = await post_json(http, fake, "/refreshToken", {"refreshToken": data["refreshToken"]})
    assert status == 200
    # counted per account, whichever refresh token it had
    assert fake.refresh_count(acct["refresh_token"]) == 2
    assert fake.refresh_count(again["refreshToken"]) == 2
    assert fake.stats()["refresh_failures"] == 1


@pytest.mark.parametrize("payload", [{"refreshToken": "nope"}, {}, None])
async def test_social_refresh_invalid_grant(fake, http, payload):
    fake.add_account()
    status, data = await post_json(http, fake, "/refreshToken", payload)
    assert (status, data) == (400, INVALID_GRANT)


async def test_idc_refresh(fake, http):
    acct = fake.add_account(auth="idc")
    good = {"clientId": acct["client_id"], "clientSecret": acct["client_secret"],
            "refreshToken": acct["refresh_token"], "grantType": "refresh_token"}
    status, data = await post_json(http, fake, "/token", good)
    assert status == 200
    assert set(data) == {"accessToken", "refreshToken", "expiresIn", "tokenType"}
    assert data["tokenType"] == "Bearer"
    assert (await generate(http, fake, body("hi"), token=data["accessToken"])).status == 200
    # an IdC token is not a social one, and vice versa
    status, _ = await post_json(http, fake, "/refreshToken", {"refreshToken": acct["refresh_token"]})
    assert status == 400
    status, err = await post_json(http, fake, "/token", good | {"refreshToken": "unknown"})
    assert (status, err) == (400, INVALID_GRANT)
    status, err = await post_json(http, fake, "/token", good | {"clientSecret": "wrong"})
    assert (status, err["error"]) == (401, "invalid_client")
    status, err = await post_json(http, fake, "/token", good | {"grantType": "authorization_code"})
    assert (status, err["error"]) == (400, "unsupported_grant_type")
    assert fake.refresh_count(acct) == 1


async def test_refresh_fault_injection(fake, http):
    acct = fake.add_account(refresh_fail_status=500)
    status, _ = await post_json(http, fake, "/refreshToken", {"refreshToken": acct["refresh_token"]})
    assert status == 500
    assert fake.refresh_count(acct) == 0


async def test_usage_limits(fake, http):
    acct = fake.add_account(subscription="KIRO FREE", usage_limit=50, current_usage=12.5, email="a@b.c")
    status, data = await get_json(http, fake, "/getUsageLimits?origin=AI_EDITOR&resourceType=AGENTIC_REQUEST",
                                  token=acct["access_token"])
    assert status == 200
    assert data["subscriptionInfo"]["subscriptionTitle"] == "KIRO FREE"
    assert data["userInfo"]["email"] == "a@b.c"
    assert data["nextDateReset"] > time.time()
    (credit,) = data["usageBreakdownList"]
    assert credit["resourceType"] == "CREDIT"
    assert (credit["usageLimitWithPrecision"], credit["currentUsageWithPrecision"]) == (50.0, 12.5)
    fake.update_account(acct["id"], quota_exhausted=True)
    _, data = await get_json(http, fake, "/getUsageLimits", token=acct["access_token"])
    assert data["usageBreakdownList"][0]["currentUsageWithPrecision"] == 50.0
    status, data = await get_json(http, fake, "/getUsageLimits", token="bad")
    assert (status, data) == (403, BEARER_INVALID)


async def test_list_models(fake, http):
    status, data = await get_json(http, fake, "/ListAvailableModels?origin=AI_EDITOR", token="t")
    assert status == 200 and len(data["models"]) == 10 and data["nextToken"]  # paged, 10 a page
    ids, models = [m["modelId"] for m in data["models"]], list(data["models"])
    while "nextToken" in data:
        status, data = await get_json(http, fake, f"/ListAvailableModels?origin=AI_EDITOR&nextToken={data['nextToken']}",
                                      token="t")
        assert status == 200
        ids, models = ids + [m["modelId"] for m in data["models"]], models + data["models"]
    status, bad = await get_json(http, fake, "/ListAvailableModels?origin=AI_EDITOR&nextToken=forged", token="t")
    assert status == 400 and bad["__type"] == "ValidationException"
    data = {"models": models}
    assert "claude-sonnet-4.5" in ids and "CLAUDE_3_7_SONNET_20250219_V1_0" in ids and len(ids) == 19 and "glm-5" in ids
    assert all(m["modelName"] for m in data["models"])
    status, _ = await get_json(http, fake, "/ListAvailableModels")
    assert status == 401


async def test_max_concurrency_throttles(fake, http):
    import asyncio

    acct = fake.add_account(max_concurrency=1)
    fake.update_settings(first_byte_delay=0.3)
    results = await asyncio.gather(*(generate(http, fake, body("x"), token=acct["access_token"]) for _ in range(3)))
    assert sorted(r.status for r in results) == [200, 429, 429]
    assert text_of(next(r for r in results if r.status == 200).events).startswith("Hello")
