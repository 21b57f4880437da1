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


@pytest.mark.parametrize("case", CASES)
def test_rendered_bytes_unchanged(case):
    got, want = render(case), _GOLDEN[case]
    if got != want:
        at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
        pytest.fail(f"{case}: differs at byte {at} of {len(want)} (got {len(got)}):\n"
                    f"want …{want[max(0, at - 200):at + 200]!r}\n got …{got[max(0, at - 200):at + 200]!r}")
