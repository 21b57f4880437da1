"""kiro/fit.py: a conversation over the window is trimmed — oldest turns first, never the system
prompt, never the first user turn, never half of a tool pair — or refused as "context full".

Every trimmed body is checked against the strict fake's validator (no orphaned tool calls or
results), and hypothesis varies the session's shape and the window.
"""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_gateway.core.conversation import ContextOverflow, Conversation, Message, TextPart, Tool, ToolCallPart, \
    ToolResultPart
from kiro_gateway.fake.state import DEFAULT_MODELS
from kiro_gateway.fake.validation import validate_request
from kiro_gateway.kiro import fit as fit_module
from kiro_gateway.kiro.models import ModelMapper
from kiro_gateway.kiro.request import RequestOptions, build_request
from kiro_gateway.core.tokencount import count

KNOWN = frozenset(DEFAULT_MODELS)
TOOL = Tool("Read", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}})
WORDS = "the gateway keeps every session going while the window fills up with tool output "


def U(*parts) -> Message:
    return Message("user", [TextPart(p) if isinstance(p, str) else p for p in parts])


def A(*parts) -> Message:
    return Message("assistant", [TextPart(p) if isinstance(p, str) else p for p in parts])


def _noisy(i: int, chars: int) -> str:
    """Text that tokenizes like code output (numbers, identifiers): ~3 characters a token."""
    return " ".join(f"v{i}_{k}={k * 7919 % 10007}" for k in range(chars // 14))


def session(turns: int, result_chars: int, first: str = "FIRST TASK: build the thing", noisy: bool = False
            ) -> list[Message]:
    msgs = [U(first)]
    for i in range(turns):
        text = _noisy(i, result_chars) if noisy else WORDS * (result_chars // len(WORDS))
        msgs += [A(f"step {i}", ToolCallPart(f"toolu_{i}", "Read", {"path": f"f{i}.py"})),
                 U(ToolResultPart(f"toolu_{i}", f"result {i} " + text))]
    msgs += [A("done reading"), U("LAST QUESTION: what next?")]
    return msgs


def build(msgs, window_model="claude-sonnet-4-5", policy="trim", system="S" * 12_000, max_tokens=8000,
          byte_limit=1_080_000):
    conv = Conversation(model=window_model, messages=msgs, system=system, tools=[TOOL], max_tokens=max_tokens)
    return build_request(conv, ModelMapper(), RequestOptions(byte_limit, policy))


def _tokens(body: bytes) -> int:
    return count(body.decode())


def test_a_session_over_the_window_keeps_system_first_and_newest_turns_and_validates():
    msgs = session(60, 16_000)  # ~1 MB of tool output: past a 200k window
    req = build(msgs)
    body = orjson.loads(req.body)
    assert validate_request(body, len(req.body), KNOWN) is None
    assert req.dropped_turns > 0 and req.dropped_turns % 2 == 0
    assert _tokens(req.body) <= 200_000 - 8000
    text = req.body.decode()
    assert "S" * 12_000 in text and "FIRST TASK" in text and "LAST QUESTION" in text
    assert "result 59 " in text and "result 0 " not in text  # the oldest went first
    # The first answer's tool call lost its result with the dropped turns: it went too, with a note.
    history = body["conversationState"]["history"]
    first_answer = history[3]["assistantResponseMessage"]
    assert "toolUses" not in first_answer and fit_module.TRIM_NOTE in first_answer["content"]


def test_the_error_policy_and_a_turn_too_big_alone_answer_context_overflow():
    with pytest.raises(ContextOverflow) as e:
        build(session(60, 16_000), policy="error")
    assert e.value.tokens > e.value.limit == 200_000
    with pytest.raises(ContextOverflow):
        build([U("FIRST " + WORDS * 12_000), A("ok"), U("again " + WORDS * 12_000)])


def test_small_requests_are_not_counted_at_all(monkeypatch):
    calls = []
    monkeypatch.setattr(fit_module, "count", lambda text: calls.append(1) or 1)
    build(session(3, 2000))
    assert calls == []  # under the budget in bytes: no tokenizer run


def test_the_next_turn_counts_only_what_is_new():
    fit_module._CACHE.clear()
    msgs = session(40, 12_000)
    start = time.perf_counter()
    build(msgs)
    first = time.perf_counter() - start
    msgs += [A("one more", ToolCallPart("toolu_x", "Read", {"path": "x.py"})), U(ToolResultPart("toolu_x", "short"))]
    start = time.perf_counter()
    build(msgs)
    second = time.perf_counter() - start
    assert second < first / 3, (first, second)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turns=st.integers(0, 30), size=st.integers(10, 20_000), window=st.sampled_from(
    ["claude-sonnet-4-5", "deepseek-3.2"]), max_tokens=st.integers(1, 64_000),
    byte_limit=st.integers(50_000, 1_080_000))
def test_any_session_either_fits_and_validates_or_is_refused(turns, size, window, max_tokens, byte_limit):
    try:
        req = build(session(turns, size), window_model=window, max_tokens=max_tokens, byte_limit=byte_limit,
                    system="be brief")
    except ContextOverflow as e:
        assert e.tokens > e.limit
        return
    body = orjson.loads(req.body)
    assert validate_request(body, len(req.body), KNOWN) is None
    assert len(req.body) <= byte_limit and "FIRST TASK" in req.body.decode()


OVERFLOWED: list[int] = []


def test_a_noisy_session_overflows_so_the_property_below_has_cases():
    conv = Conversation(model="claude-sonnet-4-5", messages=session(40, 20_000, noisy=True), system="s", tools=[TOOL])
    assert build_request(conv, ModelMapper(), RequestOptions(overflow="compact")).overflowing


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turns=st.integers(20, 40), size=st.integers(5_000, 20_000), fails=st.booleans())
def test_compaction_of_any_session_fits_and_validates(turns, size, fails):
    """The compact policy: a summary (or, when the model fails, a trim) always yields a valid body."""
    import asyncio

    from kiro_gateway.kiro.compact import Compactor

    conv = Conversation(model="claude-sonnet-4-5", messages=session(turns, size, noisy=True), system="be brief",
                        tools=[TOOL], max_tokens=8000)
    req = build_request(conv, ModelMapper(), RequestOptions(overflow="compact"))
    if not req.overflowing:
        return
    OVERFLOWED.append(1)

    async def ask(text: str) -> str:
        if fails:
            raise RuntimeError("the model is down")
        return "the user asked for a refactor; files were read"

    try:
        body, dropped = asyncio.run(Compactor().compact(orjson.loads(req.body), req.fixed, req.conversation_id,
                                                        req.budget, req.byte_limit, 200_000, ask))
    except ContextOverflow:
        return
    assert validate_request(orjson.loads(body), len(body), KNOWN) is None and dropped > 0
    assert ("Summary of the earlier part" in body.decode()) is not fails and "FIRST TASK" in body.decode()
    assert fit_module.payload_tokens(orjson.loads(body)) <= req.budget
