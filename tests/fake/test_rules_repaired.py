"""Kiro's "Improperly formed request." for each of its rules, through the gateway: a rule the
gateway can repair (kiro/repair.py) is repaired and the request succeeds on one retry, with the rule
in a response header and the request log; any other is explained to the client, naming the rule.

The gateway's own request builder never breaks these rules, so each case swaps the body it built
for the validator's full body with that case's mutation (tests/fake/test_fake_validation.py) — the
shape a body would have if Kiro's rules moved past our normaliser."""

from __future__ import annotations

import anthropic
import httpx
import orjson
import pytest
from fakekiro_support import full_body, mutated
from test_fake_validation import CASES

from gateway_proc import ADMIN_KEY
from kiro_gateway.kiro.repair import REPAIRABLE
from kiro_gateway.kiro.request import KiroRequest
from kiro_gateway.upstream import relay
from support import own_account, start_gateway

SKIP = {"body_too_long",  # the overflow path (trim and retry), tested with the long sessions
        "body_not_object",  # not a JSON object: nothing a profileArn could be spliced into
        "profile_arn_invalid"}  # the gateway splices the ARN in itself, per credential
EXPLAINED = [(r, c, m) for r, c, m in CASES if r not in SKIP and r not in REPAIRABLE]
REPAIRED = [(r, c, m) for r, c, m in CASES if r in REPAIRABLE]


@pytest.fixture
def gw(fake, tmp_path):
    g = start_gateway(fake, tmp_path, own_account(fake), admin_api_key=ADMIN_KEY)
    yield g
    g.server.stop()


def broken(monkeypatch, mutation):
    real = relay.build_request

    def build(conv, mapper, opts):
        req = real(conv, mapper, opts)
        base = full_body()
        del base["profileArn"]  # spliced in per credential, as for any body
        base["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] = req.model.kiro_id
        b = mutated(base, mutation)
        return KiroRequest(orjson.dumps(b), req.model, req.tool_names, req.thinking, req.conversation_id)

    monkeypatch.setattr(relay, "build_request", build)


def ask(gw):
    c = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    return c.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=20,
                                               messages=[{"role": "user", "content": "hello"}])


def chats(fake):
    return [(r["status"], r.get("rule")) for r in fake.requests if r["path"].endswith("generateAssistantResponse")]


@pytest.mark.parametrize(("rule", "mutation"), [(r, m) for r, _, m in REPAIRED], ids=[f"{r}-{c}" for r, c, _ in REPAIRED])
def test_a_repairable_rule_is_repaired_and_retried_once(gw, fake, monkeypatch, rule, mutation):
    broken(monkeypatch, mutation)
    raw = ask(gw)
    assert raw.parse().content[0].text
    assert raw.headers["x-kiro-repaired"].split(",")[0] == rule
    assert chats(fake) == [(400, rule), (200, None)]
    logs = httpx.get(gw.base_url + "/api/admin/logs", headers={"x-api-key": ADMIN_KEY}, timeout=10).json()["items"]
    assert (logs[0]["status"], logs[0]["kiroRule"].split(",")[0]) == (200, rule)


@pytest.mark.parametrize(("rule", "mutation"), [(r, m) for r, _, m in EXPLAINED], ids=[f"{r}-{c}" for r, c, _ in EXPLAINED])
def test_any_other_rule_is_named_to_the_client(gw, fake, monkeypatch, rule, mutation):
    broken(monkeypatch, mutation)
    with pytest.raises(anthropic.BadRequestError) as e:
        ask(gw)
    assert f"rule {rule}" in str(e.value), str(e.value)
    assert [s for s, _ in chats(fake)] == [400]
