"""The bytes a client receives, for every dialect (stream and not; text, thinking, tool calls,
errors, stop sequences, keep-alives; 10 / 100 / 1000 chunks, one frame a read, several a read,
frames cut across reads, the whole reply in one read), equal those of the goldens recorded from
the code before the performance work (tests/rendered_cases.py says how; ids and timestamps are
numbered placeholders). A faster reply path must not change what any client sees."""

from __future__ import annotations

import pytest

from rendered_cases import CASES, load_golden, render

_GOLDEN = load_golden()


def test_every_case_has_a_golden():
    assert sorted(_GOLDEN) == sorted(CASES)


def _same(case: str, got: str) -> None:
    want = _GOLDEN[case]
    if got != want:
        at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
        pytest.fail(f"{case}: differs at byte {at} of {len(want)} (got {len(got)}):\n"
                    f"want …{want[max(0, at - 200):at + 200]!r}\n got …{got[max(0, at - 200):at + 200]!r}")


@pytest.mark.parametrize("case", CASES)
def test_rendered_bytes_unchanged(case):
    _same(case, render(case))


@pytest.mark.parametrize("case", [c for c in CASES if c.endswith("/stream")])
def test_write_window_sends_the_same_bytes(case):
    """StreamedReply's write window joins chunks into fewer writes, never changes the bytes."""
    _same(case, render(case, window=0.005))


@pytest.mark.parametrize("case", ["anthropic/text10/stream", "openai_responses/tools_one/stream",
                                  "gemini_array/error_one/stream", "openai_chat/ping_one/stream"])
def test_write_window_with_paced_reads(case):
    """Reads 2 ms apart: a 5 ms window writes several together (timers fire mid-stream), the
    bytes unchanged; with no window every chunk is a write of its own."""
    each: list[int] = []
    joined: list[int] = []
    _same(case, render(case, window=0.0, pace=0.002, writes=each))
    _same(case, render(case, window=0.005, pace=0.002, writes=joined))
    assert 1 < joined[0] < each[0]
