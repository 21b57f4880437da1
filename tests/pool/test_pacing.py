"""Account pacing: caps on concurrent requests and requests per minute per credential, with a bounded queue."""

from __future__ import annotations

import asyncio
import time

import anthropic
import openai
import pytest

from support import start_gateway

MODEL = "claude-sonnet-4-6"


def creds_for(*accts) -> list[dict]:
    return [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
             "authMethod": "social"} for x in accts]


def test_twenty_at_once_never_put_more_than_two_in_flight_on_an_account(fake, clean_fake, tmp_path):
    a, b = fake.add_account(), fake.add_account()
    gw = start_gateway(fake, tmp_path, creds_for(a, b), max_concurrent_per_credential=2, load_balancing="balanced")
    try:
        fake.reset(accounts=False)  # the fake's in-flight maxima start from zero
        # Slow replies (five frames 0.05 s apart) so that the twenty overlap.
        fake.add_script({"chunk_delay": 0.05, "steps": [{"text": "Hello from fake Kiro, slowly.", "chunks": 5}],
                         "trailer": True, "times": -1})
        client = anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)

        async def burst():
            return await asyncio.gather(*[client.messages.create(
                model=MODEL, max_tokens=20, messages=[{"role": "user", "content": f"n{i}"}]) for i in range(20)])

        started = time.monotonic()
        replies = asyncio.run(burst())
        took = time.monotonic() - started
        assert len(replies) == 20 and all(r.content[0].text.startswith("Hello") for r in replies)
        peak = fake.stats()["max_inflight"]
        assert peak[a["access_token"]] == 2 and peak[b["access_token"]] == 2, peak
        assert took > 1.0  # five waves of four, not one wave of twenty
    finally:
        fake.clear_scripts()
        gw.server.stop()


def test_when_every_account_stays_busy_the_wait_ends_in_429_in_the_clients_dialect(fake, clean_fake, tmp_path):
    a = fake.add_account()
    gw = start_gateway(fake, tmp_path, creds_for(a), max_concurrent_per_credential=1, queue_timeout=0.3)
    try:
        fake.add_script({"first_byte_delay": 2.0, "times": 1})
        slow = anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        oc = openai.AsyncOpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0)

        async def both():
            hog = asyncio.create_task(slow.messages.create(model=MODEL, max_tokens=20,
                                                           messages=[{"role": "user", "content": "hog"}]))
            await asyncio.sleep(0.2)  # the hog holds the only slot for two seconds
            waiting = await asyncio.gather(
                slow.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "x"}]),
                oc.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "y"}]),
                return_exceptions=True)
            await hog
            return waiting

        err, oerr = asyncio.run(both())
        assert isinstance(err, anthropic.RateLimitError) and isinstance(oerr, openai.RateLimitError), (err, oerr)
        assert err.status_code == 429 and err.body["error"]["type"] == "overloaded_error"
        assert "retry-after" in err.response.headers
        assert oerr.status_code == 429 and oerr.code == "server_is_overloaded"
        # Free again: served at once.
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        assert client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "z"}]).content
    finally:
        gw.server.stop()


def test_requests_per_minute_cap_moves_on_to_the_next_account(fake, clean_fake, tmp_path):
    a, b = fake.add_account(), fake.add_account()
    creds = creds_for(a, b)
    creds[1]["priority"] = 1
    gw = start_gateway(fake, tmp_path, creds, max_rpm_per_credential=2, queue_timeout=0.2)
    try:
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        for i in range(4):
            client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": f"r{i}"}])
        served = [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"]
        assert served == [a["access_token"]] * 2 + [b["access_token"]] * 2
        with pytest.raises(anthropic.RateLimitError) as exc:
            client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "fifth"}])
        assert int(exc.value.response.headers["retry-after"]) >= 1
    finally:
        gw.server.stop()
