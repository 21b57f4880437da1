"""Kiro frames → neutral reply events."""

from __future__ import annotations

import orjson

from kiro_gateway.core.conversation import (ErrorEvent, Stop, TextDelta, ThinkingDelta, ThinkingEnd, ToolCallDelta,
                                       ToolCallEnd, ToolCallStart, Usage)
from kiro_gateway.kiro.eventstream import encode_event, encode_exception, encode_frame
from kiro_gateway.kiro.events import ReplyMapper
from kiro_gateway.kiro.tools import ToolNames


def ev(kind, **payload):
    return encode_event(kind, orjson.dumps(payload))


def run(frames: bytes, thinking=False, names=None, split=1):
    m = ReplyMapper(names or ToolNames(), thinking, 200_000, estimated_input=42)
    out = []
    for i in range(0, len(frames), split):
        out += m.feed(frames[i:i + split])
    out += m.finish()
    return out


def test_text_usage_and_stop():
    frames = ev("assistantResponseEvent", content="Hel") + ev("assistantResponseEvent", content="lo") + \
        ev("meteringEvent", unit="credit", usage=0.25) + ev("contextUsageEvent", contextUsagePercentage=10.0)
    out = run(frames, split=5)
    assert [e.text for e in out if isinstance(e, TextDelta)] == ["Hel", "lo"]
    usage = next(e for e in out if isinstance(e, Usage))
    assert usage.credits == 0.25 and usage.input_tokens == 20_000 - usage.output_tokens
    assert out[-1] == Stop("end_turn")


def test_tool_calls_restore_names_and_stop_reason():
    names = ToolNames()
    short = names.to_kiro("n" * 80)
    frames = ev("assistantResponseEvent", content="Sure.") + \
        ev("toolUseEvent", name=short, toolUseId="tooluse_1", input='{"a":') + \
        ev("toolUseEvent", name=short, toolUseId="tooluse_1", input="1}") + \
        ev("toolUseEvent", name=short, toolUseId="tooluse_1", stop=True)
    out = run(frames, names=names)
    starts = [e for e in out if isinstance(e, ToolCallStart)]
    assert starts == [ToolCallStart("tooluse_1", "n" * 80)]
    assert "".join(e.arguments for e in out if isinstance(e, ToolCallDelta)) == '{"a":1}'
    assert sum(isinstance(e, ToolCallEnd) for e in out) == 1
    assert out[-1] == Stop("tool_use")
    assert usage_of(out).input_tokens == 42  # no context usage: the estimate


def usage_of(out):
    return next(e for e in out if isinstance(e, Usage))


def test_thinking_gets_a_signature_before_text():
    frames = ev("assistantResponseEvent", content="<thinking>\nhm") + \
        ev("assistantResponseEvent", content="m\n</thinking>\n\nAnswer")
    out = run(frames, thinking=True, split=3)
    kinds = [type(e).__name__ for e in out]
    assert kinds.index("ThinkingEnd") < kinds.index("TextDelta")
    assert "".join(e.text for e in out if isinstance(e, ThinkingDelta)) == "hmm"
    assert next(e for e in out if isinstance(e, ThinkingEnd)).signature.startswith("kg1")


def test_thinking_only_reply_is_max_tokens():
    out = run(ev("assistantResponseEvent", content="<thinking>\nonly thoughts"), thinking=True)
    assert out[-1] == Stop("max_tokens")


def test_exceptions_and_errors():
    out = run(ev("assistantResponseEvent", content="x") +
              encode_exception("ContentLengthExceededException", b'{"message":"too long"}'))
    assert out[-1] == Stop("max_tokens")
    out = run(encode_exception("ThrottlingException", b'{"message":"slow down"}'))
    err = next(e for e in out if isinstance(e, ErrorEvent))
    assert err.kind == "rate_limit" and "slow down" in err.message
    out = run(encode_frame([(":message-type", "error"), (":error-code", "InternalError")], b"oops"))
    assert any(isinstance(e, ErrorEvent) and "InternalError" in e.message for e in out)


def test_unknown_events_and_bad_json_are_ignored():
    out = run(ev("followupPromptEvent", x=1) + encode_event("assistantResponseEvent", b"{not json") +
              ev("assistantResponseEvent", content="ok"))
    assert [e.text for e in out if isinstance(e, TextDelta)] == ["ok"]


def test_context_full_stop_reason():
    out = run(ev("assistantResponseEvent", content="x") + ev("contextUsageEvent", contextUsagePercentage=100.0))
    assert out[-1] == Stop("context_window_exceeded")


def test_deltas_from_one_read_are_coalesced_in_order():
    frames = b"".join(ev("assistantResponseEvent", content=c) for c in ["a", "b", "c"]) + \
        ev("toolUseEvent", name="t", toolUseId="tooluse_9", input="{}", stop=True) + \
        ev("assistantResponseEvent", content="d") + ev("assistantResponseEvent", content="e")
    m = ReplyMapper(ToolNames(), False, 200_000)
    out = m.feed(frames)
    assert [type(e).__name__ for e in out] == ["TextDelta", "ToolCallStart", "ToolCallDelta", "ToolCallEnd",
                                               "TextDelta"]
    assert out[0].text == "abc" and out[-1].text == "de"


def test_a_tool_call_cut_off_mid_arguments_is_max_tokens_not_tool_use():
    cut = ev("toolUseEvent", name="Write", toolUseId="tooluse_w", input='{"file_path": "/a", "content": "li') + \
        ev("toolUseEvent", name="Write", toolUseId="tooluse_w", stop=True)
    assert run(cut)[-1] == Stop("max_tokens")
    never_stopped = ev("toolUseEvent", name="Write", toolUseId="tooluse_w", input='{"a": 1}')
    out = run(never_stopped)
    assert out[-1] == Stop("max_tokens") and any(isinstance(e, ToolCallEnd) for e in out)
    whole = ev("toolUseEvent", name="Write", toolUseId="tooluse_w", input='{"a": 1}') + \
        ev("toolUseEvent", name="Write", toolUseId="tooluse_w", stop=True)
    assert run(whole)[-1] == Stop("tool_use")


def test_metadata_event_gives_kiro_own_usage_and_stop():
    frames = ev("assistantResponseEvent", content="Hi") + ev("meteringEvent", usage=0.5) + \
        ev("metadataEvent", tokenUsage={"inputTokens": 900, "outputTokens": 7, "contextUsagePercentage": 50.0},
           stopReason="MAX_TOKENS")
    out = run(frames, split=3)
    usage = next(e for e in out if isinstance(e, Usage))
    assert (usage.input_tokens, usage.output_tokens, usage.credits) == (900, 7, 0.5)
    assert out[-1] == Stop("max_tokens")
    # Only a context percentage: the input is worked out from the model's window, as before.
    out = run(ev("assistantResponseEvent", content="Hi") + ev("metadataEvent", tokenUsage={"contextUsagePercentage": 10.0}))
    assert next(e for e in out if isinstance(e, Usage)).input_tokens == 20_000 - 1


def test_native_reasoning_is_a_signed_thinking_block(caplog):
    frames = ev("reasoningContentEvent", text="Hmm, ") + ev("reasoningContentEvent", text="yes.", signature="x") + \
        ev("someFutureEvent", a=1) + ev("someFutureEvent", a=2) + ev("assistantResponseEvent", content="Yes.")
    with caplog.at_level("INFO", logger="kiro_gateway.kiro"):
        out = run(frames, split=7)
    assert "".join(e.text for e in out if isinstance(e, ThinkingDelta)) == "Hmm, yes."
    end = next(i for i, e in enumerate(out) if isinstance(e, ThinkingEnd))
    assert out[end].signature.startswith("kg1") and isinstance(out[end + 1], TextDelta)
    assert len([r for r in caplog.records if "someFutureEvent" in r.getMessage()]) == 1
