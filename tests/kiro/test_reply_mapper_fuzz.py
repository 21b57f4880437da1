"""Hypothesis on the reply mapper: any sequence of Kiro events, cut into any chunks, maps to a
well-formed reply — the same reply however it was chunked, every character of the text kept, each
tool call opened once and closed once with its arguments intact, and never an exception.

Events are drawn from what Kiro sends (text with or without a thinking block, tool-use fragments,
context usage, metering, reasoning, exceptions) and what it might (unknown events, payloads that
are not JSON or not objects, tool input nested past what JSON can be written back, numbers past
64 bits).
"""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_gateway.core.conversation import (Stop, TextDelta, ThinkingDelta, ThinkingEnd, ToolCallDelta,
                                       ToolCallEnd, ToolCallStart, Usage)
from kiro_gateway.kiro.eventstream import encode_event, encode_exception
from kiro_gateway.kiro.events import ReplyMapper
from kiro_gateway.kiro.tools import ToolNames

FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

small_json = st.recursive(st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6) | st.text(max_size=6),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                      max_size=3), max_leaves=8)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


def _text_event(s: str) -> tuple[str, bytes]:
    return "text", encode_event("assistantResponseEvent", orjson.dumps({"content": s}))


@st.composite
def tool_events(draw, index: int) -> list[tuple[str, bytes]]:
    tid = f"tooluse_{index}"
    name = draw(st.sampled_from(["Read", "Write", "Bash", "x" * 80]))
    args = orjson.dumps({"a": draw(small_json)}).decode()
    cuts = sorted(draw(st.lists(st.integers(0, len(args)), max_size=3)))
    parts = [args[i:j] for i, j in zip([0, *cuts], [*cuts, len(args)], strict=True)]
    out = [("tool", encode_event("toolUseEvent", orjson.dumps({"toolUseId": tid, "name": name, "input": p})))
           for p in parts]
    if draw(st.booleans()):
        out.append(("tool", encode_event("toolUseEvent", orjson.dumps({"toolUseId": tid, "name": name,
                                                                          "stop": True}))))
    return out


odd_payloads = st.sampled_from([b"", b"{not json", b"[1,2]", b"\"s\"", b"null", b'{"content": 5}',
                                b'{"content": "' + b"z" * 3 + b'", "followupPrompt": {}}',
                                b'{"contextUsagePercentage": 1' + b"0" * 30 + b"}",
                                b'{"usage": 1e999}', b'{"toolUseId": "tooluse_deep", "name": "W", "input": '
                                + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}"])


@st.composite
def replies(draw) -> tuple[list[tuple[str, bytes]], str, str]:
    """(frames, the answer text sent, the thinking text sent)."""
    thinking = draw(st.one_of(st.just(""), text.filter(lambda t: "</thinking>" not in t and "<thinking>" not in t)))
    answer = draw(text.filter(lambda t: "<thinking>" not in t))
    whole = (f"<thinking>\n{thinking}\n</thinking>\n\n" if thinking else "") + answer
    cuts = sorted(draw(st.lists(st.integers(0, len(whole)), max_size=6)))
    frames = [_text_event(whole[i:j]) for i, j in zip([0, *cuts], [*cuts, len(whole)], strict=True) if j > i]
    extras: list[tuple[str, bytes]] = []
    for i in range(draw(st.integers(0, 2))):
        extras += draw(tool_events(i))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["context", "metering", "unknown", "odd", "reasoning"]))
        if kind == "context":
            extras.append(("meta", encode_event("contextUsageEvent", orjson.dumps(
                {"contextUsagePercentage": draw(st.floats(-10, 1e6, allow_nan=False))}))))
        elif kind == "metering":
            extras.append(("meta", encode_event("meteringEvent", orjson.dumps(
                {"usage": draw(st.floats(0, 100, allow_nan=False))}))))
        elif kind == "unknown":
            extras.append(("meta", encode_event(draw(st.sampled_from(["someNewEvent", "metadataEvent", ""])),
                                                orjson.dumps(draw(small_json)))))
        elif kind == "odd":  # malformed frames: in Kiro's place for their type, after the text
            extras.append(("odd", encode_event(draw(st.sampled_from(["assistantResponseEvent", "toolUseEvent",
                                                                       "meteringEvent", "contextUsageEvent"])),
                                                draw(odd_payloads))))
        else:
            extras.append(("meta", encode_event("reasoningContentEvent", orjson.dumps({"text": ""}))))
    # Tool and meta frames go after the text (Kiro's order); meta may also come first.
    head = [e for e in extras if e[0] == "meta" and draw(st.booleans())]
    tail = [e for e in extras if e not in head]
    if draw(st.integers(0, 9)) == 0:
        tail.append(("exc", encode_exception("InternalServerException", b'{"message": "boom"}')))
    return head + frames + tail, answer, thinking


def _run(raw: bytes, cuts: list[int], thinking: bool) -> list:
    m = ReplyMapper(ToolNames(), thinking, 200_000)
    events = []
    for i, j in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        events += m.feed(raw[i:j])
    return events + m.finish()


def _normal(events: list) -> list:
    """Runs of text (thinking) deltas joined: how a client sees them."""
    out: list = []
    for e in events:
        if out and type(e) in (TextDelta, ThinkingDelta) and type(out[-1]) is type(e):
            out[-1] = type(e)(out[-1].text + e.text)
        elif out and type(e) is ToolCallDelta and type(out[-1]) is ToolCallDelta and out[-1].id == e.id:
            out[-1] = ToolCallDelta(e.id, out[-1].arguments + e.arguments)
        else:
            out.append(e)
    return out


@FUZZ
@given(reply=replies(), data=st.data(), thinking=st.booleans())
def test_any_reply_in_any_chunks_maps_to_one_well_formed_answer(reply, data, thinking):
    frames, answer, thought = reply
    raw = b"".join(f for _, f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    events = _run(raw, cuts, thinking)
    assert _normal(events) == _normal(_run(raw, [], thinking))  # chunking changes nothing

    # The grammar: Usage then Stop last; tool calls opened once, deltas inside, closed once.
    assert isinstance(events[-1], Stop) and isinstance(events[-2], Usage)
    assert events[-2].output_tokens >= 1 and events[-2].input_tokens >= 1
    open_ids: set[str] = set()
    seen: set[str] = set()
    thinking_open = False
    for e in events[:-2]:
        if isinstance(e, ToolCallStart):
            assert e.id not in seen
            open_ids.add(e.id)
            seen.add(e.id)
        elif isinstance(e, ToolCallDelta):
            assert e.id in open_ids
        elif isinstance(e, ToolCallEnd):
            open_ids.remove(e.id)
        elif isinstance(e, ThinkingDelta):
            thinking_open = True
        elif isinstance(e, ThinkingEnd):
            assert thinking_open
            thinking_open = False
        elif isinstance(e, TextDelta):
            assert not thinking_open  # the thinking block is closed before the answer
    assert not open_ids and not thinking_open

    # Every character kept: the answer, and the thinking (apart, when asked for; else in the text).
    # Newlines around the thinking block, and whitespace before any answer, are not part of either.
    said = "".join(e.text for e in events if isinstance(e, TextDelta))
    thought_out = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    if thinking and thought:
        assert thought_out.strip("\n") == thought.strip("\n") and said == answer.lstrip("\n")
    elif thinking:
        assert said.strip() == answer.strip() and answer.endswith(said) and not thought_out
    else:
        whole = (f"<thinking>\n{thought}\n</thinking>\n\n" if thought else "") + answer
        assert said == whole and not thought_out

    # A tool call's arguments arrive whole.
    args: dict[str, str] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            args[e.id] = args.get(e.id, "") + e.arguments
    for tid, a in args.items():
        if tid != "tooluse_deep":
            assert isinstance(orjson.loads(a), dict)
