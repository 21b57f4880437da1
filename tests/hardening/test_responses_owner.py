"""A stored Response belongs to the client key that made it, survives a restart, and is shared by a team.

Gateways as real processes on the fake Kiro, driven by the official OpenAI SDK: key B can neither
read, continue from nor delete what key A stored; after a restart (SQLite) and on another process
(Redis) A still can.
"""

from __future__ import annotations

import secrets

import openai
import pytest

from gateway_proc import GatewayProcess, start_all, stop_all, write_config
from redis_server import start_redis

MODEL = "claude-sonnet-4-5"


def _creds(fake) -> list[dict]:
    acct = fake.add_account()
    return [{"refreshToken": acct["refresh_token"], "accessToken": acct["access_token"],
             "expiresAt": acct["expires_at"], "authMethod": "social"}]


def _key(gw: GatewayProcess, name: str) -> str:
    r = gw.admin("POST", "/keys", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _client(gw: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=30)



def test_key_b_cannot_read_continue_or_delete_key_a_s_response_and_a_keeps_it_across_a_restart(
        fake, clean_fake, tmp_path):
    config = write_config(tmp_path, fake, _creds(fake))
    gw = GatewayProcess(config).wait_up()
    try:
        a_key, b_key = _key(gw, "alice"), _key(gw, "bob")
        a, b = _client(gw, a_key), _client(gw, b_key)
        first = a.responses.create(model=MODEL, input="remember the word PLUM")
        assert a.responses.retrieve(first.id).id == first.id

        with pytest.raises(openai.NotFoundError):
            b.responses.retrieve(first.id)
        with pytest.raises(openai.BadRequestError) as cont:
            b.responses.create(model=MODEL, input="what word?", previous_response_id=first.id)
        assert cont.value.body["code"] == "previous_response_not_found"
        with pytest.raises(openai.NotFoundError):
            b.responses.delete(first.id)
        assert a.responses.retrieve(first.id).id == first.id  # B's delete did nothing
        second = a.responses.create(model=MODEL, input="what word?", previous_response_id=first.id)
    finally:
        gw.stop()

    gw = GatewayProcess(config).wait_up()  # a restart: memory is gone, the state store is not
    try:
        a, b = _client(gw, a_key), _client(gw, b_key)
        assert a.responses.retrieve(second.id).id == second.id
        with pytest.raises(openai.NotFoundError):
            b.responses.retrieve(second.id)
        fake.clear_requests()
        a.responses.create(model=MODEL, input="and the first message?", previous_response_id=second.id)
        sent = [r for r in fake.requests if r["path"] == "/generateAssistantResponse"][-1]
        assert "remember the word PLUM" in str(sent["body"])  # the whole chain was rebuilt from the store
        a.responses.delete(second.id)
        with pytest.raises(openai.NotFoundError):
            a.responses.retrieve(second.id)
    finally:
        gw.stop()
    gw = GatewayProcess(config).wait_up()  # the delete reached the store, not only memory
    try:
        with pytest.raises(openai.NotFoundError):
            _client(gw, a_key).responses.retrieve(second.id)
    finally:
        gw.stop()


def test_a_response_stored_on_one_team_process_is_continued_on_another(fake, clean_fake, tmp_path):
    redis = start_redis()
    procs: list[GatewayProcess] = []
    try:
        config = write_config(tmp_path, fake, _creds(fake), stateUrl=redis.url,
                              stateNamespace="r" + secrets.token_hex(4))
        procs = start_all([config, config])
        key = _key(procs[0], "team")
        one, two = _client(procs[0], key), _client(procs[1], key)
        first = one.responses.create(model=MODEL, input="remember the word FIG")
        assert two.responses.retrieve(first.id).id == first.id
        fake.clear_requests()
        two.responses.create(model=MODEL, input="what word?", previous_response_id=first.id)
        sent = [r for r in fake.requests if r["path"] == "/generateAssistantResponse"][-1]
        assert "remember the word FIG" in str(sent["body"])
        other = _client(procs[1], _key(procs[1], "stranger"))
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(first.id)
    finally:
        stop_all(procs)
        redis.stop()
