"""Models per account: requests go to an account that has the model, INVALID_MODEL_ID fails over,
no silent downgrade (a clear error, or the configured fallback named in a header), and the model
listings show only what some account can serve, with its limits."""

from __future__ import annotations

import re
import time

import anthropic
import httpx
import openai
import pytest

from kiro_gateway.fake.server import FakeKiro
from support import start_gateway

OPUS = "claude-opus-4.8"


@pytest.fixture
def fake():
    with FakeKiro() as f:
        yield f


def cred(acct):
    return {"refreshToken": acct["refresh_token"], "authMethod": "social"}


def chats(fake):
    return [(r.get("account"), r["status"], r["body"]["conversationState"]["currentMessage"]["userInputMessage"]["modelId"])
            for r in fake.requests if r["path"].endswith("generateAssistantResponse")]


def client(gw):
    return anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def ask(gw, model, text="hello"):
    return client(gw).messages.with_raw_response.create(
        model=model, max_tokens=50, messages=[{"role": "user", "content": text}])


@pytest.fixture
def pool_ab(fake, tmp_path):
    a = fake.add_account(id="a", models=["claude-sonnet-4.6", "claude-haiku-4.5", "glm-5"])
    b = fake.add_account(id="b", models={OPUS: {"maxInputTokens": 900_000, "maxOutputTokens": 48_000},
                                         "claude-sonnet-4.6": None})
    return a, b


def test_a_model_only_on_b_always_lands_on_b(fake, tmp_path, pool_ab):
    a, b = pool_ab
    gw = start_gateway(fake, tmp_path, [cred(a), cred(b)], load_balancing="round_robin")
    try:
        for i in range(6):
            raw = ask(gw, "claude-opus-4-8", f"q{i}")
            assert raw.headers["x-kiro-model"] == OPUS
        for i in range(4):  # a model both have is spread as usual
            ask(gw, "claude-sonnet-4-6", f"s{i}")
    finally:
        gw.server.stop()
    got = chats(fake)
    assert [c for c in got if c[2] == OPUS] == [("b", 200, OPUS)] * 6
    assert {c[0] for c in got if c[2] == "claude-sonnet-4.6"} == {"a", "b"}


def test_invalid_model_id_marks_the_model_missing_and_fails_over(fake, tmp_path):
    # The account's list says it has the model, but generating says INVALID_MODEL_ID (a rollout
    # taken back): the gateway moves to the next account, and stops sending the model there.
    a = fake.add_account(id="a", fail_with="INVALID_MODEL_ID")
    b = fake.add_account(id="b")
    gw = start_gateway(fake, tmp_path, [cred(a), cred(b)])  # priority: a first
    try:
        assert ask(gw, "claude-opus-4-8").parse().content[0].text
        assert ask(gw, "claude-opus-4-8", "again").parse().content[0].text
    finally:
        gw.server.stop()
    assert chats(fake) == [("a", 400, OPUS), ("b", 200, OPUS), ("b", 200, OPUS)]


def test_no_account_has_the_model_a_clear_error(fake, tmp_path, pool_ab):
    a, _ = pool_ab
    gw = start_gateway(fake, tmp_path, [cred(a)])
    try:
        with pytest.raises(anthropic.NotFoundError) as err:
            ask(gw, "claude-opus-4-8")
        text = str(err.value)
        assert OPUS in text and "claude-sonnet-4.6" in text and "glm-5" in text
        oai = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0)
        with pytest.raises(openai.NotFoundError) as err:
            oai.chat.completions.create(model="claude-opus-4-8", messages=[{"role": "user", "content": "x"}])
        assert OPUS in str(err.value)
    finally:
        gw.server.stop()
    assert not [c for c in chats(fake) if c[2] == OPUS]  # never sent, never downgraded


def _cool_b(fake, gw, b):
    fake.update_account(b["id"], fail_with="USER_REQUEST_RATE_EXCEEDED")
    with pytest.raises(anthropic.RateLimitError):
        ask(gw, "claude-opus-4-8", "throttled")
    fake.update_account(b["id"], fail_with=None)


def test_b_in_cooldown_a_clear_error_without_fallback(fake, tmp_path, pool_ab):
    a, b = pool_ab
    gw = start_gateway(fake, tmp_path, [cred(a), cred(b)])
    try:
        _cool_b(fake, gw, b)
        fake.clear_requests()
        with pytest.raises(anthropic.RateLimitError) as err:
            ask(gw, "claude-opus-4-8")
        assert OPUS in str(err.value) and "resting" in str(err.value)
        assert int(err.value.response.headers["retry-after"]) > 0
        assert ask(gw, "claude-sonnet-4-6").parse().content[0].text  # A still serves other models
    finally:
        gw.server.stop()
    assert chats(fake) == [("a", 200, "claude-sonnet-4.6")]


def test_b_in_cooldown_the_configured_fallback_serves_and_says_so(fake, tmp_path, pool_ab):
    a, b = pool_ab
    gw = start_gateway(fake, tmp_path, [cred(a), cred(b)],
                       admin_api_key="admin-key-for-tests",
                       model_fallbacks={"claude-opus-4-8": ["claude-opus-4-7", "claude-sonnet-4-6"]})
    try:
        _cool_b(fake, gw, b)
        fake.clear_requests()
        raw = ask(gw, "claude-opus-4-8")
        assert raw.headers["x-kiro-model"] == "claude-sonnet-4.6"
        assert raw.parse().content[0].text
        logs = httpx.get(gw.base_url + "/api/admin/logs", headers={"x-api-key": "admin-key-for-tests"}).json()
    finally:
        gw.server.stop()
    assert chats(fake) == [("a", 200, "claude-sonnet-4.6")]  # opus-4.7 is on nobody: skipped
    # The request log names the model asked for and the one that served.
    assert [(e["model"], e["kiroModel"]) for e in logs["items"]][0] == ("claude-opus-4-8", "claude-sonnet-4.6")


def test_models_lists_show_only_what_some_account_serves(fake, tmp_path, pool_ab):
    a, b = pool_ab
    gw = start_gateway(fake, tmp_path, [cred(a), cred(b)])
    try:
        c = client(gw)
        listed = {m.id: m for m in c.models.list()}
        assert set(listed) == {"claude-opus-4-8", "claude-sonnet-4-6", "claude-haiku-4-5-20251001", "glm-5"}
        raw = httpx.get(gw.base_url + "/v1/models", headers={"x-api-key": gw.api_key}).json()
        opus = next(m for m in raw["data"] if m["id"] == "claude-opus-4-8")
        assert (opus["max_input_tokens"], opus["max_tokens"]) == (900_000, 48_000)
        got = c.models.retrieve("claude-opus-4-8")
        assert got.id == "claude-opus-4-8" and got.display_name == "Claude Opus 4.8"
        with pytest.raises(anthropic.NotFoundError):
            c.models.retrieve("claude-opus-4-7")  # a Claude model, but on no account
        oai = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0)
        assert {m.id for m in oai.models.list()} == set(listed)
        glm = oai.models.retrieve("glm-5")
        assert glm.id == "glm-5" and glm.owned_by == "kiro"
        assert glm.model_extra["context_window"] == 200_000
        with pytest.raises(openai.NotFoundError):
            oai.models.retrieve("deepseek-3.2")
        gem = httpx.get(gw.base_url + "/v1beta/models", headers={"x-goog-api-key": gw.api_key}).json()
        assert {m["baseModelId"] for m in gem["models"]} == set(listed)
    finally:
        gw.server.stop()
    lists = sum(n for p, n in fake.stats()["paths"].items() if p.endswith("ListAvailableModels"))
    assert lists == 2  # once per account, then cached


def test_a_stale_list_is_refreshed_in_the_background(fake, tmp_path):
    a = fake.add_account(id="a", models=["claude-sonnet-4.6"])
    gw = start_gateway(fake, tmp_path, [cred(a)])
    facts = gw.app.state.gateway.upstream.facts
    try:
        with pytest.raises(anthropic.NotFoundError):
            ask(gw, "claude-opus-4-8")
        fake.update_account("a", models=["claude-sonnet-4.6", OPUS])  # rolled out to the account
        with pytest.raises(anthropic.NotFoundError):
            ask(gw, "claude-opus-4-8")  # the list is fresh: not asked again
        facts._facts["1"]["modelsAt"] = 0  # six hours later
        assert ask(gw, "claude-sonnet-4-6").parse().content[0].text  # served from the old list
        deadline = time.time() + 5
        while OPUS not in (facts.known_models("1") or {}) and time.time() < deadline:
            time.sleep(0.05)
        assert ask(gw, "claude-opus-4-8").headers["x-kiro-model"] == OPUS
    finally:
        gw.server.stop()
    lists = sum(n for p, n in fake.stats()["paths"].items() if p.endswith("ListAvailableModels"))
    assert lists == 2


def test_a_paged_model_list_is_followed_to_the_end(fake, tmp_path, pool_ab):
    a, b = pool_ab
    fake.state.models_page_size = 1  # a's three models come on three pages
    gw = start_gateway(fake, tmp_path, [cred(a), cred(b)])
    try:
        listed = {m.id for m in client(gw).models.list()}
        assert listed == {"claude-opus-4-8", "claude-sonnet-4-6", "claude-haiku-4-5-20251001", "glm-5"}
    finally:
        gw.server.stop()
    lists = sum(n for p, n in fake.stats()["paths"].items() if p.endswith("ListAvailableModels"))
    assert lists == 5  # 3 pages for a, 2 for b


def test_the_size_check_uses_the_window_the_account_reports(fake, tmp_path):
    # The account's list gives claude-sonnet-4.5 a 20,000-token window (the built-in table says
    # 200,000): a 40,000-token turn is refused before it is sent under `error`, and trimmed to fit
    # under `trim`, so Kiro never sees an oversized body.
    a = fake.add_account(id="a", models={"claude-sonnet-4.5": {"maxInputTokens": 20_000}})
    big = "lorem ipsum dolor sit amet " * 6_000  # ~40k tokens
    for policy in ("error", "trim"):
        fake.clear_requests()
        gw = start_gateway(fake, tmp_path, [cred(a)], overflow_policy=policy)
        try:
            assert ask(gw, "claude-sonnet-4-5").parse().content[0].text  # the account's list is learned
            if policy == "error":
                with pytest.raises(anthropic.BadRequestError) as e:
                    ask(gw, "claude-sonnet-4-5", big)
                m = re.search(r"prompt is too long: (\d+) tokens > (\d+) maximum", str(e.value))
                assert m and int(m.group(2)) <= 20_000 < int(m.group(1)), str(e.value)
                assert len(chats(fake)) == 1
            else:
                raw = client(gw).messages.with_raw_response.create(
                    model="claude-sonnet-4-5", max_tokens=50,
                    messages=[{"role": "user", "content": "read these"}, {"role": "assistant", "content": "sure"},
                              {"role": "user", "content": big}, {"role": "assistant", "content": "noted"},
                              {"role": "user", "content": big[: len(big) // 8]}, {"role": "assistant", "content": "ok"},
                              {"role": "user", "content": "and now?"}])
                assert raw.parse().content[0].text and int(raw.headers["x-kiro-trimmed-messages"]) >= 1
                assert [c[1] for c in chats(fake)] == [200, 200]
        finally:
            gw.server.stop()
