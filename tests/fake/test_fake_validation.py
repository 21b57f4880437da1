"""Every rule of the fake's validator (docs/kiro-protocol.md, “Size and request rules”): one valid body, one mutation per rule.

Each mutation is checked twice: against the pure function, and over a real socket where the fake
must answer 400 with Kiro's body and name the rule in `x-fake-rule`.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from fakekiro_support import PNG_1PX, Replace, assistant, body, full_body, generate, mutated, result, tool_spec, user

from kiro_gateway.fake.server import DEFAULT_MODELS
from kiro_gateway.fake.validation import MAX_BODY_BYTES, RULES, validate_request

MALFORMED = {"message": "Improperly formed request.", "reason": None}
TOO_LONG = {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}
MODELS = set(DEFAULT_MODELS)


def cs(b):
    return b["conversationState"]


def cur(b):
    return cs(b)["currentMessage"]["userInputMessage"]


def ctx(b):
    return cur(b)["userInputMessageContext"]


def hist(b, i):
    entry = cs(b)["history"][i]
    return entry.get("userInputMessage") or entry.get("assistantResponseMessage")


def tools(b):
    return ctx(b)["tools"]


def spec(b, i=0):
    return tools(b)[i]["toolSpecification"]


def setitem(get, key, value):
    def apply(b):
        get(b)[key] = value

    return apply


def delitem(get, key):
    def apply(b):
        del get(b)[key]

    return apply


# (rule, case id, mutation of full_body() in place; returning Replace(x) swaps the body for x)
CASES = [
    ("body_too_long", "over the cap", setitem(cur, "content", "x" * (MAX_BODY_BYTES + 1))),
    ("body_not_object", "list", lambda b: Replace([b])),
    ("unknown_top_level_key", "extra", setitem(lambda b: b, "conversationStateX", {})),
    ("profile_arn_invalid", "number", setitem(lambda b: b, "profileArn", 5)),
    ("conversation_state_missing", "absent", delitem(lambda b: b, "conversationState")),
    ("conversation_id_invalid", "empty", setitem(cs, "conversationId", "")),
    ("conversation_id_invalid", "absent", delitem(cs, "conversationId")),
    ("chat_trigger_type_invalid", "other", setitem(cs, "chatTriggerType", "INLINE")),
    ("chat_trigger_type_invalid", "absent", delitem(cs, "chatTriggerType")),
    ("current_message_missing", "absent", delitem(lambda b: cs(b)["currentMessage"], "userInputMessage")),
    ("current_content_not_string", "list", setitem(cur, "content", ["hi"])),
    ("current_content_empty", "no_results", delitem(ctx, "toolResults")),
    ("model_unknown", "gpt", setitem(cur, "modelId", "gpt-4o")),
    ("model_unknown", "anthropic_name", setitem(cur, "modelId", "claude-sonnet-4-5-20250929")),
    ("origin_invalid", "cli", setitem(cur, "origin", "CLI")),
    ("origin_invalid", "absent", delitem(cur, "origin")),
    ("user_context_invalid", "string", setitem(cur, "userInputMessageContext", "tools")),
    ("images_invalid", "string", setitem(cur, "images", "png")),
    ("image_misplaced", "in_context", setitem(ctx, "images", [{"format": "png", "source": {"bytes": PNG_1PX}}])),
    ("image_format_invalid", "bmp", lambda b: hist(b, 0)["images"][0].update(format="bmp")),
    ("image_format_invalid", "mime", lambda b: hist(b, 0)["images"][0].update(format="image/png")),
    ("image_bytes_invalid", "data_url", lambda b: hist(b, 0)["images"][0]["source"].update(
        bytes="data:image/png;base64," + PNG_1PX)),
    ("image_bytes_invalid", "not_base64", lambda b: hist(b, 0)["images"][0]["source"].update(bytes="%%%")),
    ("history_not_list", "object", setitem(cs, "history", {})),
    ("history_entry_invalid", "both_roles", lambda b: cs(b)["history"][0].update(assistantResponseMessage={})),
    ("history_entry_invalid", "unknown_role", lambda b: cs(b)["history"].__setitem__(0, {"systemMessage": {}})),
    ("history_first_not_user", "assistant_first", lambda b: cs(b)["history"].pop(0)),
    ("history_not_alternating", "two_users", lambda b: cs(b)["history"].insert(0, user("Hi"))),
    ("history_last_not_assistant", "ends_user", lambda b: cs(b)["history"].pop()),
    ("history_user_content_not_string", "number", setitem(lambda b: hist(b, 0), "content", 5)),
    ("history_user_content_empty", "empty", setitem(lambda b: hist(b, 0), "content", "")),
    ("assistant_content_not_string", "null", setitem(lambda b: hist(b, 1), "content", None)),
    ("assistant_content_empty", "empty", setitem(lambda b: hist(b, 1), "content", "")),
    ("tool_uses_invalid", "no_name", delitem(lambda b: hist(b, 1)["toolUses"][0], "name")),
    ("tool_uses_invalid", "no_id", delitem(lambda b: hist(b, 1)["toolUses"][0], "toolUseId")),
    ("tool_use_input_not_object", "string", setitem(lambda b: hist(b, 1)["toolUses"][0], "input", '{"city":"Paris"}')),
    ("tool_use_id_duplicate", "reused", setitem(lambda b: hist(b, 3)["toolUses"][1], "toolUseId", "tooluse_a")),
    ("tool_results_invalid", "no_id", delitem(lambda b: hist(b, 2)["userInputMessageContext"]["toolResults"][0],
                                              "toolUseId")),
    ("tool_result_status_invalid", "ok", lambda b: ctx(b)["toolResults"][0].update(status="ok")),
    ("tool_result_content_invalid", "string", lambda b: ctx(b)["toolResults"][0].update(content="rain")),
    ("tool_result_content_invalid", "json_item", lambda b: ctx(b)["toolResults"][0].update(content=[{"json": {}}])),
    ("tool_result_duplicate", "twice", lambda b: ctx(b)["toolResults"].append(result("tooluse_b"))),
    ("tool_result_orphan", "unknown_id", lambda b: ctx(b)["toolResults"].append(result("tooluse_z"))),
    ("tool_result_orphan", "answers_older_turn", lambda b: hist(b, 2)["userInputMessageContext"]["toolResults"]
     .append(result("tooluse_b"))),
    ("tool_result_missing", "one_unanswered", lambda b: ctx(b)["toolResults"].pop()),
    ("tools_invalid", "object", setitem(ctx, "tools", {"get_weather": {}})),
    ("tool_not_function", "server_tool", lambda b: tools(b).append({"type": "web_search_20250305", "name": "web_search"})),
    ("tool_not_function", "web_search_name", lambda b: tools(b).append(tool_spec("web_search_20250305"))),
    ("tool_name_invalid", "65_chars", setitem(spec, "name", "t" * 65)),
    ("tool_name_invalid", "empty", setitem(spec, "name", "")),
    ("tool_name_duplicate", "twice", lambda b: tools(b).append(tool_spec())),
    ("tool_description_blank", "spaces", setitem(spec, "description", "  \n")),
    ("tool_description_blank", "absent", delitem(spec, "description")),
    ("tool_description_too_long", "10001", setitem(spec, "description", "d" * 10_001)),
    ("tool_schema_invalid", "string_schema", setitem(spec, "inputSchema", {"json": "{}"})),
    ("tool_schema_invalid", "no_json_key", setitem(spec, "inputSchema", {"type": "object"})),
    ("tools_missing", "results_without_tools", delitem(ctx, "tools")),
    ("tool_not_declared", "missing_one", lambda b: tools(b).pop()),
    ("tool_not_declared", "case_differs", setitem(lambda b: spec(b, 1), "name", "Get_time")),
]

VALID = {
    "full": full_body(),
    "minimal": body("Hello"),
    "auto_trigger": mutated(body("Hello"), lambda b: cs(b).update(chatTriggerType="AUTO")),
    "null_optionals": body("Hello", history=None) | {"profileArn": None},
    "whitespace_assistant": body("Next", history=[user("Hi"), assistant("  ")]),
    "tools_without_use": body("Hi", tools=[tool_spec()]),
    "at_size_limit": None,  # built below: exactly MAX_BODY_BYTES
    "every_model": body("Hi"),
}


def sized_body(size: int) -> dict:
    import orjson

    b = body("")
    cur(b)["modelId"] = "claude-sonnet-4.6"  # a 1M window: the bytes, not the tokens, are the limit here
    cur(b)["content"] = "x" * (size - len(orjson.dumps(b)))
    assert len(orjson.dumps(b)) == size
    return b


VALID["at_size_limit"] = sized_body(MAX_BODY_BYTES)


def test_every_rule_has_a_case():
    assert {rule for rule, _, _ in CASES} == set(RULES)


@pytest.mark.parametrize("name", VALID)
def test_valid_bodies_pass(name):
    import orjson

    b = VALID[name]
    assert validate_request(b, len(orjson.dumps(b)), MODELS) is None


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_known_model_accepted(model):
    b = mutated(body("Hi"), lambda b: cur(b).update(modelId=model))
    assert validate_request(b, 300, MODELS) is None


@pytest.mark.parametrize(("rule", "mutation"), [(r, m) for r, _, m in CASES], ids=[f"{r}-{c}" for r, c, _ in CASES])
def test_rule_pure(rule, mutation):
    import orjson

    b = mutated(full_body(), mutation)
    kind = "too_long" if rule == "body_too_long" else "malformed"
    assert validate_request(b, len(orjson.dumps(b)), MODELS) == (rule, kind)


@pytest.mark.parametrize(("rule", "mutation"), [(r, m) for r, _, m in CASES], ids=[f"{r}-{c}" for r, c, _ in CASES])
def test_the_gateway_s_diagnosis_names_the_same_rule_and_where(rule, mutation):
    """One rule set: what the fake rejects is what the gateway explains (kiro/rules.py)."""
    import orjson

    from kiro_gateway.kiro.rules import diagnose, explain

    b = mutated(full_body(), mutation)
    found = diagnose(b, len(orjson.dumps(b)), MODELS)
    assert found is not None and found[0] == rule
    if rule.startswith(("history_user", "assistant_", "tool_use", "tool_result")) and rule != "tool_results_invalid":
        assert found[1], (rule, found)  # a history entry, a tool call or the current message is named
    assert rule in explain(*found)


@pytest.mark.parametrize(("rule", "mutation"), [(r, m) for r, _, m in CASES], ids=[f"{r}-{c}" for r, c, _ in CASES])
async def test_rule_over_http(fake, http, rule, mutation):
    res = await generate(http, fake, mutated(full_body(), mutation))
    assert res.status == 400
    assert res.headers["x-fake-rule"] == rule
    assert res.json == (TOO_LONG if rule == "body_too_long" else MALFORMED)
    rec = fake.requests[-1]
    assert (rec["status"], rec["rule"]) == (400, rule)
    assert fake.stats()["rules"] == {rule: 1}


async def test_valid_full_body_streams(fake, http):
    res = await generate(http, fake, full_body())
    assert res.status == 200, res.raw
    assert "x-fake-rule" not in res.headers
    assert fake.requests[-1]["verdict"] == "ok"


async def test_size_limit_is_exact(fake, http):
    assert (await generate(http, fake, sized_body(MAX_BODY_BYTES))).status == 200
    res = await generate(http, fake, sized_body(MAX_BODY_BYTES + 1))
    assert (res.status, res.headers["x-fake-rule"], res.json) == (400, "body_too_long", TOO_LONG)


async def test_invalid_json(fake, http):
    res = await generate(http, fake, b'{"conversationState": ')
    assert (res.status, res.headers["x-fake-rule"], res.json) == (400, "body_not_json", MALFORMED)


async def test_auth_is_checked_before_the_body(fake, http):
    res = await generate(http, fake, b"not json", token=None)
    assert res.status == 401


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
ALL_PATHS = list(_paths(full_body()))


@settings(max_examples=400, deadline=None, database=None)
@given(path=st.sampled_from(ALL_PATHS), value=JSON_VALUES)
def test_any_replacement_is_answered_not_raised(path, value):
    """Whatever a client puts anywhere, the validator answers (never crashes), and the default reply
    can be built for every body it accepts."""
    import orjson

    from kiro_gateway.fake.replies import Settings, default_reply

    def replace(b):
        if not path:
            return Replace(value)
        node = b
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    b = mutated(full_body(), replace)
    verdict = validate_request(b, len(orjson.dumps(b)), MODELS)
    assert verdict is None or (verdict[0] in RULES and verdict[1] in ("malformed", "too_long"))
    if verdict is None:
        assert default_reply(b, 100, Settings()).items


async def test_over_the_models_window_is_context_full(fake, http):
    """Under the byte cap but over the model's token window (about 4 bytes a token): Kiro's
    CONTENT_LENGTH_EXCEEDS_THRESHOLD, for a 200k model and not for a 1M one."""
    small = sized_body(900_000)
    cur(small)["modelId"] = "claude-sonnet-4.5"
    res = await generate(http, fake, small)
    assert (res.status, res.json) == (400, TOO_LONG) and fake.requests[-1]["verdict"] == "context_full"
    assert (await generate(http, fake, sized_body(900_000))).status == 200
