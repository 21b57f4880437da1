"""Valid requests with one hostile value in a free-form slot, in every dialect: never a 500.

The dialects' own fuzz (tests/dialects) throws shapeless bodies, most of which fail validation
early. Here each body is valid but for one slot — a tool schema, tool input, metadata, a result,
a generation setting — which hypothesis fills with JSON no encoder writes (nesting past every
limit, numbers past 64 bits or a double; tests/hostile.py) or ordinary values. The gateway must
answer in the dialect's shape: 200, or a 4xx naming the problem.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hostile

MODEL = "claude-sonnet-4-6"
SLOT = "\x01slot"


def _user(text="hi"):
    return {"role": "user", "content": text}


TEMPLATES = {
    "/v1/messages": [
        {"model": MODEL, "max_tokens": 20, "messages": [_user()], "metadata": {"user_id": SLOT}},
        {"model": MODEL, "max_tokens": 20, "messages": [_user()],
         "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object", "properties": {"x": SLOT}}}]},
        {"model": MODEL, "max_tokens": 20, "messages": [
            _user("do it"), {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t",
                                                                 "input": {"a": SLOT}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": SLOT}]}],
         "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"}}]},
        {"model": MODEL, "max_tokens": SLOT, "messages": [_user()]},
        {"model": MODEL, "max_tokens": 20, "temperature": SLOT, "messages": [_user()]},
        {"model": MODEL, "max_tokens": 20, "thinking": {"type": "enabled", "budget_tokens": SLOT}, "messages": [_user()]},
    ],
    "/v1/messages/count_tokens": [
        {"model": MODEL, "messages": [_user()],
         "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object", "properties": {"x": SLOT}}}]},
    ],
    "/v1/chat/completions": [
        {"model": MODEL, "messages": [_user()], "tools": [{"type": "function", "function": {
            "name": "t", "parameters": {"type": "object", "properties": {"x": SLOT}}}}]},
        {"model": MODEL, "messages": [_user("go"), {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "t", "arguments": SLOT}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": SLOT}],
         "tools": [{"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}]},
        {"model": MODEL, "messages": [_user()], "response_format": {"type": "json_schema", "json_schema": {
            "name": "s", "schema": {"type": "object", "properties": {"x": SLOT}}}}},
        {"model": MODEL, "messages": [_user()], "max_tokens": SLOT},
        {"model": MODEL, "messages": [_user()], "metadata": {"k": SLOT}, "seed": SLOT},
    ],
    "/v1/responses": [
        {"model": MODEL, "input": "hi", "metadata": {"k": SLOT}},
        {"model": MODEL, "input": "hi", "tools": [{"type": "function", "name": "t",
                                                   "parameters": {"type": "object", "properties": {"x": SLOT}}}]},
        {"model": MODEL, "input": [{"type": "message", "role": "user", "content": "go"},
                                   {"type": "function_call", "call_id": "c1", "name": "t", "arguments": SLOT},
                                   {"type": "function_call_output", "call_id": "c1", "output": SLOT}],
         "tools": [{"type": "function", "name": "t", "parameters": {"type": "object"}}]},
        {"model": MODEL, "input": "hi", "max_output_tokens": SLOT, "text": {"format": {
            "type": "json_schema", "name": "s", "schema": {"type": "object", "properties": {"x": SLOT}}}}},
    ],
    "/v1beta/models/gemini-2.5-pro:generateContent": [
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": SLOT}},
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"temperature": SLOT,
                                                                                         "topK": SLOT}},
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
         "tools": [{"functionDeclarations": [{"name": "t", "parameters": {"type": "OBJECT", "properties": {"x": SLOT}}}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "go"}]},
                      {"role": "model", "parts": [{"functionCall": {"name": "t", "args": {"a": SLOT}}}]},
                      {"role": "user", "parts": [{"functionResponse": {"name": "t", "response": {"r": SLOT}}}]}],
         "tools": [{"functionDeclarations": [{"name": "t"}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {
            "responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "properties": {"x": SLOT}}}},
    ],
}

values = hostile.leaves | st.integers(-(2 ** 63), 2 ** 63 - 1) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=5) | st.none()


def _body(template: dict, value, stream: bool, path: str) -> bytes:
    raw = orjson.dumps({**template, **({} if "gemini" in path or "count_tokens" in path else {"stream": stream})})
    if isinstance(value, str) and value in hostile.RAW:
        return hostile.expand(raw.replace(b'"\\u0001slot"', orjson.dumps(value)))
    return raw.replace(b'"\\u0001slot"', orjson.dumps(value))


def _shaped(path: str, r) -> bool:
    doc = r.json()
    if path.startswith("/v1/messages"):
        return doc.get("type") == "error" and bool(doc["error"]["message"])
    err = doc.get("error")
    return isinstance(err, dict) and bool(err.get("message"))


@pytest.mark.parametrize("path", list(TEMPLATES))
def test_a_hostile_value_in_any_slot_is_answered_in_the_dialect(gateway, http, path):
    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(template=st.sampled_from(TEMPLATES[path]), value=values, stream=st.booleans())
    def run(template, value, stream):
        target = path.replace(":generateContent", ":streamGenerateContent?alt=sse") if stream and "gemini" in path \
            else path
        r = http.post(gateway.base_url + target, content=_body(template, value, stream, path), timeout=15,
                      headers={"x-api-key": gateway.api_key, "content-type": "application/json",
                               "anthropic-version": "2023-06-01"})
        assert r.status_code < 500, (value, r.text[:300])
        if r.status_code != 200:
            assert _shaped(path, r), r.text[:300]
        else:
            assert b"Internal gateway error" not in r.content and b"internal" not in r.content[-300:], r.text[-300:]
    run()
