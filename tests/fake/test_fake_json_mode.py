"""The default reply to the gateway's JSON-mode instruction: a minimal instance of the schema."""

from __future__ import annotations

import json

import pytest
from fakekiro_support import assistant, body, generate, text_of, user

from kiro_gateway.fake.replies import JSON_MARKER, SCHEMA_MARKER, json_request, minimal_instance
from kiro_gateway.kiro.request import _json_instruction

ROUTER_SCHEMA = {"type": "object", "required": ["complexity_reasoning", "complexity_score"], "properties": {
    "complexity_reasoning": {"type": "string"}, "complexity_score": {"type": "integer"}}}


def test_markers_match_the_gateways_instruction():
    text = _json_instruction(ROUTER_SCHEMA)
    assert text.startswith(JSON_MARKER) and SCHEMA_MARKER in text
    assert json_request(body("q", history=[user("sys\n\n" + text), assistant("ok")])) == (True, ROUTER_SCHEMA)
    assert json_request(body(_json_instruction(None))) == (True, None)
    assert json_request(body("plain question")) == (False, None)


@pytest.mark.parametrize("schema,value", [
    (ROUTER_SCHEMA, {"complexity_reasoning": "fake", "complexity_score": 1}),  # Gemini CLI's router (zod: min 1)
    ({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}, {}),  # optional properties left out
    ({"type": "string", "enum": ["flash", "pro"]}, "flash"),
    ({"type": "array", "minItems": 2, "items": {"type": "number", "minimum": 2.5}}, [2.5, 2.5]),
    ({"type": "integer", "exclusiveMinimum": 4, "maximum": 9}, 5),
    ({"type": ["null", "boolean"]}, False),
    ({"anyOf": [{"const": 7}, {"type": "string"}]}, 7),
    ({"type": "string", "minLength": 6, "maxLength": 6}, "fakexx"),
    ("not a schema", {}),
])
def test_minimal_instance(schema, value):
    assert minimal_instance(schema) == value


async def test_default_reply_is_json_for_json_mode(fake, http):
    sys = "Be a router.\n\n" + _json_instruction(ROUTER_SCHEMA)
    res = await generate(http, fake, body("rate this", history=[user(sys), assistant("ok")]))
    assert json.loads(text_of(res.events)) == {"complexity_reasoning": "fake", "complexity_score": 1}
    thinking = "<thinking_mode>adaptive</thinking_mode>\n" + _json_instruction(None)
    res = await generate(http, fake, body("anything", history=[user(thinking), assistant("ok")]))
    text = text_of(res.events)
    assert text.startswith("<thinking>") and json.loads(text.rsplit("\n\n", 1)[1]) == {"answer": "fake"}
