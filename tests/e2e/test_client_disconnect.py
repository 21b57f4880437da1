"""A client that leaves mid-stream: the gateway stops reading Kiro's stream at once (the fake
sees its connection go) and the credential's in-flight slot comes back, in every dialect."""

from __future__ import annotations

import time

import httpx
import pytest

from support import own_account, start_gateway

MODEL = "claude-sonnet-4-6"
ADMIN = "admin-key-for-disconnect-tests"
STREAMS = {
    "anthropic": ("/v1/messages", {"model": MODEL, "max_tokens": 100, "stream": True,
                                   "messages": [{"role": "user", "content": "slow please"}]}),
    "openai_chat": ("/v1/chat/completions", {"model": MODEL, "stream": True,
                                             "messages": [{"role": "user", "content": "slow please"}]}),
    "openai_responses": ("/v1/responses", {"model": MODEL, "stream": True, "input": "slow please"}),
    "gemini": (f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
               {"contents": [{"role": "user", "parts": [{"text": "slow please"}]}]}),
}


@pytest.fixture(scope="module")
def gw(fake, tmp_path_factory):
    g = start_gateway(fake, tmp_path_factory.mktemp("disconnect"), own_account(fake), admin_api_key=ADMIN,
                      ping_interval=30.0)
    yield g
    g.server.stop()


def in_flight(gw) -> int:
    creds = httpx.get(gw.base_url + "/api/admin/credentials", headers={"x-api-key": ADMIN}).json()
    return sum(c["inFlight"] for c in creds["credentials"])


@pytest.mark.parametrize("dialect", list(STREAMS))
def test_leaving_mid_stream_closes_the_kiro_stream(gw, clean_fake, dialect):
    # 40 pieces 0.1 s apart: 4 s of stream if nobody stops it
    steps = [{"text": "first words"}] + [s for i in range(40) for s in ({"delay": 0.1}, {"text": f" w{i}"})]
    clean_fake.add_script({"match": "slow please", "steps": steps})
    path, body = STREAMS[dialect]
    headers = {"x-api-key": gw.api_key, "authorization": f"Bearer {gw.api_key}", "x-goog-api-key": gw.api_key}
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", gw.base_url + path, json=body, headers=headers) as r:
            assert r.status_code == 200
            seen = b""
            for chunk in r.iter_raw():
                seen += chunk
                if b"first words" in seen:
                    break
            left = time.time()
        # leaving the `with` closes the connection mid-stream
    deadline = time.time() + 3
    while time.time() < deadline:
        recs = [x for x in clean_fake.requests if x["path"] == "/generateAssistantResponse"]
        if recs and recs[-1].get("ended") and in_flight(gw) == 0:
            break
        time.sleep(0.05)
    rec = recs[-1]
    assert rec.get("ended") == "client_gone", rec.get("ended")
    assert rec["ended_at"] - left < 1.0  # noticed within a few of Kiro's chunks, not after 4 s
    assert in_flight(gw) == 0
