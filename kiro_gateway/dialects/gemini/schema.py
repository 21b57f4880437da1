"""Gemini's OpenAPI-style schemas → JSON Schema (what Kiro's tool specs and the JSON-mode prompt use).

Gemini `Schema` objects use upper-case types (`"OBJECT"`, `"STRING"`), `nullable`, and
`propertyOrdering`; the google-genai SDK sends them for `parameters` and `responseSchema`, and
Gemini CLI even sends upper-case types inside `responseJsonSchema` (seen from Gemini CLI). The
conversion is idempotent on real JSON Schema, so both fields go through it. Only keyword
positions are walked: a property *named* "type" is left alone.
"""

from __future__ import annotations

from typing import Any

__all__ = ["to_json_schema"]

_TYPES = {"STRING": "string", "NUMBER": "number", "INTEGER": "integer", "BOOLEAN": "boolean",
          "ARRAY": "array", "OBJECT": "object", "NULL": "null"}
_DROP = frozenset({"propertyOrdering", "property_ordering", "nullable", "example"})
# google-genai (Python) sends Schema fields in snake_case, which the proto JSON parser accepts.
_CAMEL = {"any_of": "anyOf", "min_items": "minItems", "max_items": "maxItems", "min_length": "minLength",
          "max_length": "maxLength", "min_properties": "minProperties", "max_properties": "maxProperties",
          "additional_properties": "additionalProperties"}
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
               "propertyNames", "unevaluatedProperties", "unevaluatedItems", "additionalItems")
_MAX_DEPTH = 64


def _type(value: Any) -> Any:
    if isinstance(value, str):
        return _TYPES.get(value.upper(), value)
    if isinstance(value, list):
        return [_type(v) for v in value]
    return value


def to_json_schema(schema: Any, _depth: int = 0) -> Any:
    """A JSON Schema equivalent of `schema` (a new object; the input is not modified)."""
    if not isinstance(schema, dict) or _depth > _MAX_DEPTH:
        return schema
    out: dict[str, Any] = {}
    for raw_key, value in schema.items():
        key = str(_CAMEL.get(raw_key, raw_key))
        if key in _DROP:
            continue
        if key == "type":
            t = _type(value)
            if isinstance(t, str) and t.upper() == "TYPE_UNSPECIFIED":
                continue
            out[key] = t
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: to_json_schema(v, _depth + 1) for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [to_json_schema(v, _depth + 1) for v in value]
        elif key in _SCHEMA_ONE:
            if isinstance(value, list):  # draft-4 tuple form of items
                out[key] = [to_json_schema(v, _depth + 1) for v in value]
            else:
                out[key] = to_json_schema(value, _depth + 1)
        else:
            out[key] = value
    if schema.get("nullable") is True and "type" in out:
        t = out["type"]
        if isinstance(t, str) and t != "null":
            out["type"] = [t, "null"]
        elif isinstance(t, list) and "null" not in t:
            out["type"] = [*t, "null"]
    return out
