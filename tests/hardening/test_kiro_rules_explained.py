"""Kiro's bare "Improperly formed request." explained: the gateway runs Kiro's rules (kiro/rules.py,
the fake's own) on what it sent and tells the client which one broke and where, in its dialect,
with the rule in the request log. Here an image whose data is not base64, which no dialect repairs."""

from __future__ import annotations

import httpx
import pytest

from gateway_proc import ADMIN_KEY
from support import own_account, start_gateway

BAD = "!!!not-base64!!!"
MODEL = "claude-sonnet-4-6"
REQUESTS = {
    "/v1/messages": {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": BAD}},
        {"type": "text", "text": "what is it?"}]}]},
    "/v1/chat/completions": {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{BAD}"}},
        {"type": "text", "text": "what is it?"}]}]},
    "/v1/responses": {"model": MODEL, "input": [{"type": "message", "role": "user", "content": [
        {"type": "input_image", "image_url": f"data:image/png;base64,{BAD}"},
        {"type": "input_text", "text": "what is it?"}]}]},
    "/v1beta/models/gemini-2.5-pro:generateContent": {"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": BAD}}, {"text": "what is it?"}]}]},
}


@pytest.fixture(scope="module")
def gw(fake, tmp_path_factory):
    g = start_gateway(fake, tmp_path_factory.mktemp("rules"), own_account(fake), admin_api_key=ADMIN_KEY)
    yield g
    g.server.stop()


@pytest.mark.parametrize("path", list(REQUESTS))
def test_the_broken_rule_is_named_in_each_dialect_and_logged(gw, path):
    r = httpx.post(gw.base_url + path, json=REQUESTS[path], timeout=20, headers={"x-api-key": gw.api_key})
    if r.status_code == 200 or "rule" not in r.text:  # the dialect refused it itself: fine, but say so
        assert r.status_code == 400 and "base64" in r.text.lower(), r.text
        return
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "rule image_bytes_invalid at currentMessage" in message, message
    logs = httpx.get(gw.base_url + "/api/admin/logs", headers={"x-api-key": ADMIN_KEY}, timeout=10).json()["items"]
    assert logs[0]["kiroRule"] == "image_bytes_invalid"
