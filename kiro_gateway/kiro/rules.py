"""Kiro's request rules as this project knows them (docs/kiro-protocol.md), one named rule per check.

One rule set, two users: the fake Kiro rejects what breaks them (fake/validation.py), and the
gateway, when Kiro answers "Improperly formed request.", runs them on the body it sent to tell the
client which rule broke and where (`diagnose`).

`validate_request` is pure: it returns None for a body Kiro is believed to accept, else
(rule_name, kind) with kind "malformed" (answered 400 "Improperly formed request.") or "too_long"
(answered 400 "Input is too long."). Checks run in a fixed order and the first failure wins, so
every rule can be triggered on its own by one mutation of a valid body.

Choices where the sources are silent: JSON null counts as absent for optional members (AWS JSON
protocol semantics); unknown members below the top level are ignored (AWS ignores them); duplicate
declared tool names are rejected (Bedrock and Anthropic both do).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Container
from collections.abc import Set as AbstractSet
from typing import Any

__all__ = ["validate_request", "diagnose", "explain", "HINTS", "RULES", "MAX_BODY_BYTES", "IMAGE_FORMATS"]

MAX_BODY_BYTES = 1_085_440  # measured: 1,085,435 bytes passed, 1,086,459 failed
MAX_TOOL_NAME = 64
MAX_TOOL_DESCRIPTION = 10_000
IMAGE_FORMATS = frozenset({"jpeg", "png", "gif", "webp"})
TRIGGER_TYPES = frozenset({"MANUAL", "AUTO"})
RESULT_STATUSES = frozenset({"success", "error"})
TOP_LEVEL_KEYS = frozenset({"conversationState", "profileArn"})
# Server tools Anthropic clients send; Kiro only takes function tools.
SERVER_TOOL_NAMES = frozenset({"web_search_20250305"})

# Every rule name, in check order (the tests assert each one is reachable).
RULES = (
    "body_too_long",
    "body_not_object",
    "unknown_top_level_key",
    "profile_arn_invalid",
    "conversation_state_missing",
    "conversation_id_invalid",
    "chat_trigger_type_invalid",
    "current_message_missing",
    "current_content_not_string",
    "current_content_empty",
    "model_unknown",
    "origin_invalid",
    "user_context_invalid",
    "images_invalid",
    "image_misplaced",
    "image_format_invalid",
    "image_bytes_invalid",
    "history_not_list",
    "history_entry_invalid",
    "history_first_not_user",
    "history_not_alternating",
    "history_last_not_assistant",
    "history_user_content_not_string",
    "history_user_content_empty",
    "assistant_content_not_string",
    "assistant_content_empty",
    "tool_uses_invalid",
    "tool_use_input_not_object",
    "tool_use_id_duplicate",
    "tool_results_invalid",
    "tool_result_status_invalid",
    "tool_result_content_invalid",
    "tool_result_duplicate",
    "tool_result_orphan",
    "tool_result_missing",
    "tools_invalid",
    "tool_not_function",
    "tool_name_invalid",
    "tool_name_duplicate",
    "tool_description_blank",
    "tool_description_too_long",
    "tool_schema_invalid",
    "tools_missing",
    "tool_not_declared",
)


class _Reject(Exception):
    __slots__ = ("rule", "where")

    def __init__(self, rule: str, where: str = "") -> None:
        self.rule = rule
        self.where = where  # e.g. "history[3]", "tool 'Read'", "currentMessage"


def _one_of(value: object, allowed: Container[object]) -> bool:
    return isinstance(value, str) and value in allowed  # lists/dicts are unhashable


def _opt_list(container: dict[str, Any], key: str, rule: str) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Reject(rule)
    return value


def _check_images(msg: dict[str, Any], ctx: dict[str, Any]) -> None:
    if ctx.get("images") is not None:
        raise _Reject("image_misplaced")
    for image in _opt_list(msg, "images", "images_invalid"):
        if not isinstance(image, dict):
            raise _Reject("images_invalid")
        if not _one_of(image.get("format"), IMAGE_FORMATS):
            raise _Reject("image_format_invalid")
        source = image.get("source")
        data = source.get("bytes") if isinstance(source, dict) else None
        if not isinstance(data, str) or not data or data.startswith("data:"):
            raise _Reject("image_bytes_invalid")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _Reject("image_bytes_invalid") from None


def _user_context(msg: dict[str, Any]) -> dict[str, Any]:
    ctx = msg.get("userInputMessageContext")
    if ctx is None:
        return {}
    if not isinstance(ctx, dict):
        raise _Reject("user_context_invalid")
    return ctx


def _result_ids(ctx: dict[str, Any]) -> list[str]:
    """The toolUseIds a user message answers, after checking each result's shape."""
    ids = []
    for result in _opt_list(ctx, "toolResults", "tool_results_invalid"):
        if not isinstance(result, dict):
            raise _Reject("tool_results_invalid")
        rid = result.get("toolUseId")
        if not isinstance(rid, str) or not rid:
            raise _Reject("tool_results_invalid")
        if not _one_of(result.get("status"), RESULT_STATUSES):
            raise _Reject("tool_result_status_invalid")
        content = result.get("content")
        if not isinstance(content, list):
            raise _Reject("tool_result_content_invalid")
        for item in content:
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise _Reject("tool_result_content_invalid")
        ids.append(rid)
    return ids


def _check_pairing(result_ids: list[str], expected: list[str]) -> None:
    """Results must answer exactly the preceding assistant's tool uses."""
    seen: set[str] = set()
    for rid in result_ids:
        if rid in seen:
            raise _Reject("tool_result_duplicate")
        seen.add(rid)
    for rid in result_ids:
        if rid not in expected:
            raise _Reject("tool_result_orphan")
    if len(seen) != len(expected):
        raise _Reject("tool_result_missing")


def _check_history(history: list[Any], seen_use_ids: set[str], used_names: set[str]) -> tuple[list[str], bool]:
    """Walks history; returns (tool-use ids of its last assistant, any tool results seen)."""
    roles = []
    for entry in history:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise _Reject("history_entry_invalid")
        (role,) = entry
        if role not in ("userInputMessage", "assistantResponseMessage") or not isinstance(
            entry[role], dict
        ):
            raise _Reject("history_entry_invalid")
        roles.append(role)
    if history:
        if roles[0] != "userInputMessage":
            raise _Reject("history_first_not_user")
        for i in range(1, len(roles)):
            if roles[i] == roles[i - 1]:
                raise _Reject("history_not_alternating")
        if roles[-1] != "assistantResponseMessage":
            raise _Reject("history_last_not_assistant")

    expected: list[str] = []
    any_results = False
    for i, entry in enumerate(history):
        try:
            expected, any_results = _check_entry(entry, expected, any_results, seen_use_ids, used_names)
        except _Reject as r:
            r.where = r.where or f"history[{i}]"
            raise
    return expected, any_results


def _check_entry(entry: dict[str, Any], expected: list[str], any_results: bool, seen_use_ids: set[str],
                 used_names: set[str]) -> tuple[list[str], bool]:
    msg = entry.get("userInputMessage")
    if msg is not None:
        content = msg.get("content")
        if not isinstance(content, str):
            raise _Reject("history_user_content_not_string")
        ctx = _user_context(msg)
        _check_images(msg, ctx)
        ids = _result_ids(ctx)
        if content == "" and not ids:
            raise _Reject("history_user_content_empty")
        _check_pairing(ids, expected)
        return [], any_results or bool(ids)
    msg = entry["assistantResponseMessage"]
    content = msg.get("content")
    if not isinstance(content, str):
        raise _Reject("assistant_content_not_string")
    if content == "":  # whitespace-only is what KRS sends for tool-only turns
        raise _Reject("assistant_content_empty")
    expected = []
    for use in _opt_list(msg, "toolUses", "tool_uses_invalid"):
        if not isinstance(use, dict):
            raise _Reject("tool_uses_invalid")
        uid, name = use.get("toolUseId"), use.get("name")
        if not isinstance(uid, str) or not uid or not isinstance(name, str) or not name:
            raise _Reject("tool_uses_invalid")
        if not isinstance(use.get("input"), dict):
            raise _Reject("tool_use_input_not_object")
        if uid in seen_use_ids:
            raise _Reject("tool_use_id_duplicate", f"tool call {uid}")
        seen_use_ids.add(uid)
        used_names.add(name)
        expected.append(uid)
    return expected, any_results


def _declared_tools(ctx: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for tool in _opt_list(ctx, "tools", "tools_invalid"):
        if not isinstance(tool, dict):
            raise _Reject("tools_invalid")
        spec = tool.get("toolSpecification")
        if not isinstance(spec, dict):
            raise _Reject("tool_not_function")
        name = spec.get("name")
        if _one_of(name, SERVER_TOOL_NAMES):
            raise _Reject("tool_not_function")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_TOOL_NAME:
            raise _Reject("tool_name_invalid")
        if name in names:
            raise _Reject("tool_name_duplicate")
        names.add(name)
        try:
            _check_spec(spec, name)
        except _Reject as r:
            r.where = f"tool '{name}'"
            raise
    return names


def _check_spec(spec: dict[str, Any], name: str) -> None:
    desc = spec.get("description")
    if not isinstance(desc, str) or not desc.strip():
        raise _Reject("tool_description_blank")
    if len(desc) > MAX_TOOL_DESCRIPTION:
        raise _Reject("tool_description_too_long")
    schema = spec.get("inputSchema")
    if not isinstance(schema, dict) or not isinstance(schema.get("json"), dict):
        raise _Reject("tool_schema_invalid")


def _validate(body: object, raw_size: int, known_models: AbstractSet[str] | None) -> None:
    if raw_size > MAX_BODY_BYTES:
        raise _Reject("body_too_long")
    if not isinstance(body, dict):
        raise _Reject("body_not_object")
    for key in body:
        if key not in TOP_LEVEL_KEYS:
            raise _Reject("unknown_top_level_key")
    arn = body.get("profileArn")
    if arn is not None and not isinstance(arn, str):
        raise _Reject("profile_arn_invalid")
    state = body.get("conversationState")
    if not isinstance(state, dict):
        raise _Reject("conversation_state_missing")
    conv_id = state.get("conversationId")
    if not isinstance(conv_id, str) or not conv_id:
        raise _Reject("conversation_id_invalid")
    if not _one_of(state.get("chatTriggerType"), TRIGGER_TYPES):
        raise _Reject("chat_trigger_type_invalid")
    current = state.get("currentMessage")
    msg = current.get("userInputMessage") if isinstance(current, dict) else None
    if not isinstance(msg, dict):
        raise _Reject("current_message_missing")
    content = msg.get("content")
    if not isinstance(content, str):
        raise _Reject("current_content_not_string")
    ctx = _user_context(msg)
    try:
        current_results = _result_ids(ctx)
    except _Reject as r:
        r.where = "currentMessage"
        raise
    if content == "" and not current_results:
        raise _Reject("current_content_empty")
    if known_models is not None and not _one_of(msg.get("modelId"), known_models):
        raise _Reject("model_unknown", "currentMessage")
    if msg.get("origin") not in ("AI_EDITOR", "KIRO_CLI"):  # the IDE's, kiro-cli's
        raise _Reject("origin_invalid")
    try:
        _check_images(msg, ctx)
    except _Reject as r:
        r.where = "currentMessage"
        raise

    history = state.get("history")
    if history is None:
        history = []
    elif not isinstance(history, list):
        raise _Reject("history_not_list")
    use_ids: set[str] = set()
    used_names: set[str] = set()
    expected, history_results = _check_history(history, use_ids, used_names)
    try:
        _check_pairing(current_results, expected)
    except _Reject as r:
        r.where = "currentMessage"
        raise

    declared = _declared_tools(ctx)
    if (current_results or history_results or used_names) and not declared:
        raise _Reject("tools_missing")
    for name in used_names:
        if name not in declared:  # case-sensitive on purpose
            raise _Reject("tool_not_declared", f"tool '{name}'")


def validate_request(body: dict[str, Any], raw_size: int, known_models: AbstractSet[str]) -> tuple[str, str] | None:
    """None if Kiro would accept the request, else (rule_name, "malformed" | "too_long")."""
    try:
        _validate(body, raw_size, known_models)
    except _Reject as rejected:
        kind = "too_long" if rejected.rule == "body_too_long" else "malformed"
        return rejected.rule, kind
    return None


def diagnose(body: dict[str, Any], raw_size: int,
             known_models: AbstractSet[str] | None = None) -> tuple[str, str] | None:
    """(rule, where) of the first rule `body` breaks, or None. `known_models` None: any model."""
    try:
        _validate(body, raw_size, known_models)
    except _Reject as rejected:
        return rejected.rule, rejected.where
    return None


# What a person is told for the rules a client's request can break (the rest name the rule only).
HINTS = {
    "tool_result_orphan": "a tool result answers no tool call of the turn before it",
    "tool_result_missing": "a tool call has no result in the next turn",
    "tool_result_duplicate": "a tool call is answered twice",
    "tool_use_id_duplicate": "two tool calls share an id",
    "tool_not_declared": "the history calls a tool the request does not declare",
    "tools_missing": "the history has tool calls or results but the request declares no tools",
    "tool_name_invalid": "a tool name is empty or longer than 64 characters",
    "tool_name_duplicate": "two tools have the same name",
    "tool_description_blank": "a tool has no description",
    "tool_description_too_long": "a tool description is longer than 10,000 characters",
    "tool_schema_invalid": "a tool's input schema is not a JSON object",
    "tool_use_input_not_object": "a tool call's input is not a JSON object",
    "image_format_invalid": "an image is not jpeg, png, gif or webp",
    "image_bytes_invalid": "an image's data is not plain base64",
    "history_not_alternating": "two turns in a row have the same role",
    "current_content_empty": "the newest message is empty",
    "history_user_content_empty": "a user turn is empty",
    "assistant_content_empty": "an assistant turn is empty",
}


def explain(rule: str, where: str) -> str:
    """One sentence for the client: which rule, where, and what it means."""
    at = f" at {where}" if where else ""
    hint = HINTS.get(rule)
    return f"Kiro refused the request as improperly formed: rule {rule}{at}" + (f" ({hint})." if hint else ".")
