"""One Anthropic stream reports one input figure: message_start and message_delta agree (Claude
Code's meter reads both), also when Kiro reports a context usage that implies another figure."""

from __future__ import annotations

import json

import httpx


def test_stream_input_tokens_agree_between_start_and_delta(gateway, clean_fake):
    clean_fake.add_script({"steps": [{"text": "hello there"}, {"context_usage": 2.5}]})
    body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "count the tokens of this short prompt"}]}
    events = {}
    with httpx.stream("POST", gateway.base_url + "/v1/messages", json=body, timeout=20,
                      headers={"x-api-key": gateway.api_key, "anthropic-version": "2023-06-01"}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                ev = json.loads(line[6:])
                events[ev["type"]] = ev
    start = events["message_start"]["message"]["usage"]["input_tokens"]
    delta = events["message_delta"]["usage"]["input_tokens"]
    # 2.5 % of Kiro's context window is thousands of tokens; the prompt is a handful.
    assert 0 < start < 100 and delta == start
