"""Anthropic request bodies at three sizes, all derived from one real Claude Code request.

- `2k`:   a short system prompt and one user message, no tools (a chat-style request).
- `80k`:  tests/fixtures/claude_code/turn1_request.json as sent (12 KB system, 24 tools).
- `400k`: the same request after a long session: ~320 KB of earlier turns (tool calls with file
          contents as results) in front of the same last user message.

The issue-17 matrix's sizes (`--issue17`): `10k` (the short request with a longer question),
`60k` (the Claude Code request with its last tools left out until it fits), `300k` (the long
session, shorter).

Every body keeps the fixture's model, thinking setting and last user message, so the fake Kiro's
default reply (an echo of the last message) is the same text for all three.
"""

from __future__ import annotations

import copy
from functools import cache, lru_cache
from pathlib import Path

import orjson

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "claude_code" / "turn1_request.json"
SIZES = ("2k", "80k", "400k")
ISSUE_SIZES = ("10k", "60k", "300k")
ALL_SIZES = SIZES + ISSUE_SIZES


@lru_cache(maxsize=1)
def fixture() -> dict:
    return orjson.loads(FIXTURE.read_bytes())


def _small() -> dict:
    fx = fixture()
    return {
        "model": fx["model"],
        "max_tokens": 4096,
        "stream": True,
        "system": [{"type": "text", "text": "You are a concise assistant. " * 30}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Summarise the design of an "
                                                  "HTTP gateway in three sentences. " * 12}]}],
    }


def _file_text(i: int, size: int) -> str:
    line = f"    def method_{i}_%d(self, value):  # line of a source file read by the agent\n"
    out, n = [], 0
    while n < size:
        s = line % len(out)
        out.append(s)
        n += len(s)
    return "".join(out)[:size]


def _large(target: int = 400_000) -> dict:
    body = copy.deepcopy(fixture())
    last = body["messages"]  # the fixture's turn: user message + system-role reminder
    history: list[dict] = []
    i = 0
    while len(orjson.dumps({**body, "messages": history + last})) < target:
        tid = f"toolu_bench{i:016d}"
        history.append({"role": "user", "content": [{"type": "text", "text": f"Step {i}: read module {i} "
                                                     "and tell me what it does."}]})
        history.append({"role": "assistant", "content": [
            {"type": "text", "text": f"I'll read module {i} first."},
            {"type": "tool_use", "id": tid, "name": "Read", "input": {"file_path": f"/src/module_{i}.py"}},
        ]})
        history.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tid, "content": _file_text(i, 7000)},
        ]})
        history.append({"role": "assistant", "content": [{"type": "text", "text": f"Module {i} defines "
                                                          "a class with small accessor methods. " * 3}]})
        i += 1
    body["messages"] = history + last
    return body


def _padded_small(target: int) -> dict:
    body = _small()
    text = body["messages"][0]["content"][0]
    while len(orjson.dumps(body)) < target:
        text["text"] += "Say what each part costs, and why. "
    return body


def _fewer_tools(target: int) -> dict:
    body = copy.deepcopy(fixture())
    while len(orjson.dumps(body)) > target and body.get("tools"):
        body["tools"].pop()
    return body


@cache
def anthropic_body(size: str) -> dict:
    """The parsed Anthropic body for a size label (streaming flag set; callers override it)."""
    if size == "2k":
        return _small()
    if size == "80k":
        return copy.deepcopy(fixture())
    if size == "400k":
        return _large()
    if size == "10k":
        return _padded_small(10_000)
    if size == "60k":
        return _fewer_tools(60_000)
    if size == "300k":
        return _large(300_000)
    raise ValueError(f"unknown body size {size!r}; one of {ALL_SIZES}")
