"""The `compact` overflow policy: the oldest turns replaced by a summary the model writes.

When a request does not fit (fit.py raises `Overflowing`), the turns `trim` would drop — after the
system pair and the first user turn with its answer — are instead summarised by the model (on the
normal path: `ask` is the upstream's) and stand in the history as one user/assistant pair. Two
things keep it cheap across a long session:
- **Room to grow**: it summarises down to `TARGET` of the budget, so the next turns fit as they
  come without a new summary.
- **Reuse**: the summary is kept per conversation with a hash of the exact turns it replaces; a
  next request whose history starts with those same turns gets the same summary, no model call.
  Only when it overflows again is a new one written — of the previous summary and the next turns.

A summary that cannot be had (the model fails, or the transcript itself is too big) falls back
to trimming, so the request is still served.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from .fit import _detach_results, _detach_uses, first_droppable, fit, payload_tokens

__all__ = ["Compactor", "SUMMARY_HEAD", "SUMMARY_ACK"]

log = logging.getLogger("kiro_gateway.compact")

TARGET = 0.6  # of the budget, after a new summary
SUMMARY_HEAD = "[Summary of the earlier part of this conversation, written to save room]\n\n"
SUMMARY_ACK = "Understood; I will continue from this summary."
PROMPT = ("Summarise the following earlier part of a conversation between a user and a coding assistant, "
          "so the assistant can continue the work without it: the goals, decisions made, files and code "
          "touched, tool results that still matter, and open questions. Be complete but concise; write only "
          "the summary.\n\n<transcript>\n{transcript}\n</transcript>")
_KEEP = 256  # conversations whose summary is remembered


def _entry_text(entry: dict[str, Any]) -> str:
    """One Kiro history entry as transcript text."""
    user = entry.get("userInputMessage")
    if user is not None:
        parts = [user.get("content", "")]
        for r in (user.get("userInputMessageContext") or {}).get("toolResults") or ():
            parts.append(f"[tool result {r.get('toolUseId')}] " + "\n".join(c.get("text", "") for c in r["content"]))
        return "User: " + "\n".join(p for p in parts if p)
    msg = entry.get("assistantResponseMessage") or {}
    parts = [msg.get("content", "")]
    for u in msg.get("toolUses") or ():
        parts.append(f"[tool call {u.get('name')} {orjson.dumps(u.get('input')).decode()}]")
    return "Assistant: " + "\n".join(p for p in parts if p)


def _digest(entries: list[dict[str, Any]]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for e in entries:
        h.update(orjson.dumps(e))
    return h.digest()


class Compactor:
    def __init__(self) -> None:
        # conversation id → (how many original history entries the summary replaces, their hash, summary)
        self._kept: OrderedDict[str, tuple[int, bytes, str]] = OrderedDict()
        self.summaries = 0  # model calls made (for tests and the log)

    async def compact(self, payload: dict[str, Any], fixed: int, conversation: str, budget: int, byte_limit: int,
                      window: int, ask: Callable[[str], Awaitable[str]]) -> tuple[bytes, int]:
        """(the body that fits, history messages replaced or dropped)."""
        state = payload["conversationState"]
        history: list[dict[str, Any]] = state.get("history") or []
        start = first_droppable(history, fixed)
        kept = self._kept.get(conversation)
        if kept is not None:
            count, digest, summary = kept
            if len(history) - start > count and _digest(history[start:start + count]) == digest:
                trial = orjson.loads(orjson.dumps(payload))
                self._splice(trial, start, count, summary)
                if payload_tokens(trial) <= budget and len(orjson.dumps(trial)) <= byte_limit:
                    self._kept.move_to_end(conversation)
                    return orjson.dumps(trial), count
        # A new summary: of as many of the oldest turns as bring the rest under TARGET of the budget.
        prior = kept[2] if kept is not None and _digest(history[start:start + kept[0]]) == kept[1] else None
        summarised = kept[0] if kept is not None and prior else 0  # turns the prior summary covers
        count = self._span(payload, start, budget, byte_limit, summarised)
        if count == 0:
            return fit(payload, fixed, byte_limit, budget, "trim", window)
        transcript = ((f"Earlier summary:\n{prior}\n\n" if prior else "")
                      + "\n\n".join(_entry_text(e) for e in history[start + summarised:start + count]))
        try:
            summary = (await ask(PROMPT.format(transcript=transcript[-(budget * 3):]))).strip()
        except Exception as e:  # noqa: BLE001 - served anyway: trimmed instead of summarised
            log.warning("compaction failed (%s); trimming instead", type(e).__name__)
            summary = ""
        if not summary:
            return fit(payload, fixed, byte_limit, budget, "trim", window)
        self.summaries += 1
        self._kept[conversation] = (count, _digest(history[start:start + count]), summary)
        if len(self._kept) > _KEEP:
            self._kept.popitem(last=False)
        self._splice(payload, start, count, summary)
        body, dropped = fit(payload, fixed, byte_limit, budget, "trim", window)  # a safety net
        return body, count + dropped

    @staticmethod
    def _span(payload: dict[str, Any], start: int, budget: int, byte_limit: int, at_least: int) -> int:
        """How many history entries from `start` (whole pairs) to replace so the rest is under TARGET."""
        state = payload["conversationState"]
        history = state.get("history") or []
        trial = orjson.loads(orjson.dumps(payload))
        t_hist = trial["conversationState"].get("history") or []
        count = 0
        while len(history) - start - count >= 2:
            count += 2
            if count < at_least:
                continue
            rest = {"conversationState": {**trial["conversationState"],
                                          "history": t_hist[:start] + t_hist[start + count:]}}
            if payload_tokens(rest) <= budget * TARGET and len(orjson.dumps(rest)) <= byte_limit * TARGET:
                return count
        return count

    @staticmethod
    def _splice(payload: dict[str, Any], start: int, count: int, summary: str) -> None:
        """Replace history[start:start+count] by a summary pair, keeping tool pairs whole."""
        state = payload["conversationState"]
        history = state["history"]
        model = state["currentMessage"]["userInputMessage"].get("modelId")
        pair = [{"userInputMessage": {"content": SUMMARY_HEAD + summary, "modelId": model, "origin": "AI_EDITOR"}},
                {"assistantResponseMessage": {"content": SUMMARY_ACK}}]
        history[start:start + count] = pair
        if start > 0:
            _detach_uses(history[start - 1])  # the first answer's calls were answered in the replaced turns
        after = start + 2
        if len(history) > after:
            _detach_results(history[after], keep_context=False)
        else:
            _detach_results(state["currentMessage"], keep_context=True)
