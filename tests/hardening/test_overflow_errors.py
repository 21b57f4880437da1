"""Kiro's "does not fit" answers reach each client worded as its own API words "context full"
(the wording its tooling matches to compact): Anthropic's "prompt is too long: N tokens > M
maximum", OpenAI's context_length_exceeded, Gemini's input token count message."""

from __future__ import annotations

import re

import httpx
import pytest

MODEL = "claude-sonnet-4-6"
BODIES = {
    "/v1/messages": {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "big"}]},
    "/v1/chat/completions": {"model": MODEL, "messages": [{"role": "user", "content": "big"}]},
    "/v1/responses": {"model": MODEL, "input": "big"},
    "/v1beta/models/gemini-2.5-pro:generateContent": {"contents": [{"role": "user", "parts": [{"text": "big"}]}]},
}


@pytest.mark.parametrize("kiro_body", [{"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"},
                                       {"message": "Input is too long."}])
@pytest.mark.parametrize("path", list(BODIES))
def test_kiro_overflow_is_worded_as_each_api_does(gateway, clean_fake, path, kiro_body):
    for stream in (False, True):
        clean_fake.add_script({"status": 400, "body": kiro_body})
        body = dict(BODIES[path])
        target = path
        if "gemini" in path:
            target = path.replace(":generateContent", ":streamGenerateContent?alt=sse") if stream else path
        else:
            body["stream"] = stream
        r = httpx.post(gateway.base_url + target, json=body, timeout=15,
                       headers={"x-api-key": gateway.api_key, "anthropic-version": "2023-06-01"})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        if path == "/v1/messages":
            assert err["type"] == "invalid_request_error"
            # Claude Code's own pattern for this error
            m = re.search(r"prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)", err["message"], re.I)
            assert m and int(m.group(1)) > int(m.group(2)) >= 200_000, err
        elif "gemini" in path:
            assert err["status"] == "INVALID_ARGUMENT"
            assert re.match(r"The input token count \(\d+\) exceeds the maximum number of tokens allowed \(\d+\)\.",
                            err["message"]), err
        else:
            assert err["code"] == "context_length_exceeded" and err["type"] == "invalid_request_error"
            assert "maximum context length is" in err["message"], err


def test_a_request_over_kiros_payload_cap_is_worded_the_same(gateway):
    huge = "word " * 240_000  # 1.2 MB: over maxPayloadBytes even with only this turn
    r = httpx.post(gateway.base_url + "/v1/messages", timeout=15, headers={"x-api-key": gateway.api_key},
                   json={"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": huge}]})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("prompt is too long: "), r.text
