"""Making a Kiro request fit: its body under Kiro's payload cap, its tokens under the model's window.

Kiro refuses a body over about 1.08 MB, and a conversation over the model's input window
(`CONTENT_LENGTH_EXCEEDS_THRESHOLD`): docs/kiro-protocol.md. `fit` checks both before sending.
Over either, the `trim` policy drops the oldest turns — never the system pair, never the first
user turn and its answer, never half of a tool call and its result — until it fits with room for
the reply; the `error` policy (and `trim`, when even the newest turn alone is too big) raises
`ContextOverflow`, which each dialect words as its clients' "context full"; the `compact` policy
raises `Overflowing` for compact.py, which replaces the oldest turns by a summary.

Tokens are counted with the real tokenizer (tokens.count), per history entry and per tool list,
cached by content: a long session is counted once, then only its new turns. Counting is skipped
when the body's bytes are below the token budget (a token is at least one byte), so small and
mid-sized requests pay nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson

from ..core.conversation import ContextOverflow
from ..core.tokencount import count

__all__ = ["fit", "count_cached", "TRIM_NOTE", "Overflowing", "payload_tokens", "first_droppable"]


class Overflowing(Exception):
    """The `compact` policy's signal: the body does not fit (tokens: our count of it)."""

    def __init__(self, tokens: int) -> None:
        super().__init__(tokens)
        self.tokens = tokens


def payload_tokens(payload: dict[str, Any]) -> int:
    state = payload["conversationState"]
    return _tokens(state, state.get("history") or [])


def first_droppable(history: list[dict[str, Any]], fixed: int) -> int:
    """Where dropping starts: after the system pair, the first user turn and its answer."""
    return fixed + 2 if len(history) - fixed >= 2 else fixed

TRIM_NOTE = "(earlier tool calls were left out here to fit the context window)"
_CACHE: OrderedDict[int, int] = OrderedDict()
_CACHE_SIZE = 20_000


def count_cached(data: bytes) -> int:
    """Tokens in a serialised piece of the request, remembered by content."""
    key = hash(data)
    n = _CACHE.get(key)
    if n is None:
        n = count(data.decode("utf-8", "replace"))
        _CACHE[key] = n
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return n


def _message_tokens(entry: dict[str, Any]) -> int:
    """A user or assistant entry; a user message's tool list (big, the same every turn) apart."""
    msg = entry.get("userInputMessage")
    if msg is not None:
        ctx = msg.get("userInputMessageContext") or {}
        tools = ctx.get("tools")
        if tools:
            rest = {**msg, "userInputMessageContext": {k: v for k, v in ctx.items() if k != "tools"}}
            return count_cached(orjson.dumps(tools)) + count_cached(orjson.dumps(rest))
    return count_cached(orjson.dumps(entry))


def _tokens(state: dict[str, Any], history: list[dict[str, Any]]) -> int:
    return _message_tokens(state["currentMessage"]) + sum(_message_tokens(e) for e in history)


def fit(payload: dict[str, Any], fixed: int, byte_limit: int, token_limit: int | None, policy: str,
        window: int) -> tuple[bytes, int]:
    """(the body, how many history messages were left out). `fixed`: the leading history entries
    that are the system prompt (never dropped); `token_limit`: the input budget (the window less
    room for the reply), None to skip the token check."""
    state = payload["conversationState"]
    history: list[dict[str, Any]] = state.get("history") or []
    body = orjson.dumps(payload)

    def over() -> tuple[bool, int]:
        if len(body) > byte_limit:
            return True, len(body) // 4
        if token_limit is None or len(body) <= token_limit:  # a token is at least one byte
            return False, 0
        n = _tokens(state, history)
        return n > token_limit, n

    too_big, tokens = over()
    if not too_big:
        return body, 0
    if policy == "compact":
        raise Overflowing(tokens)  # the caller (compact.py) summarises what trimming would drop
    if policy == "error":
        raise ContextOverflow(tokens, window if len(body) <= byte_limit else min(window, byte_limit // 4),
                              "" if len(body) <= byte_limit else f"{len(body)} bytes, Kiro accepts about {byte_limit}")
    start = first_droppable(history, fixed)  # the first user turn and its answer stay
    dropped = 0
    while too_big and len(history) - start >= 2:
        del history[start: start + 2]
        dropped += 2
        if start > fixed:  # the first answer's tool calls lost their results
            _detach_uses(history[start - 1])
        # The turn now at `start` lost the assistant turn its tool results answered.
        if len(history) > start:
            _detach_results(history[start], keep_context=False)
        else:
            _detach_results(state["currentMessage"], keep_context=True)
        if not history:
            state.pop("history", None)
        body = orjson.dumps(payload)
        too_big, tokens = over()
    if too_big:
        limit = min(window, byte_limit // 4) if len(body) > byte_limit else (token_limit or window)
        raise ContextOverflow(tokens, limit, "even with only the first and the newest turns"
                              + (f"; {len(body)} bytes, Kiro accepts about {byte_limit}" if len(body) > byte_limit
                                 else ""))
    return body, dropped


def _detach_uses(entry: dict[str, Any]) -> None:
    """An assistant turn whose tool calls' results were left out: its calls go too."""
    msg = entry.get("assistantResponseMessage")
    if msg and msg.pop("toolUses", None):
        msg["content"] = "\n\n".join(filter(None, [msg.get("content", ""), TRIM_NOTE]))


def _detach_results(entry: dict[str, Any], keep_context: bool) -> None:
    """A user turn lost the assistant turn its tool results answered: results become text."""
    msg = entry.get("userInputMessage")
    if not msg:
        return
    ctx = msg.get("userInputMessageContext") or {}
    results = ctx.pop("toolResults", None)
    if not results:
        return
    notes = [f"[Tool result for call {r['toolUseId']}]\n" + "\n".join(c.get("text", "") for c in r["content"])
             for r in results]
    msg["content"] = "\n".join(filter(None, [*notes, msg.get("content", "")]))
    if not ctx and not keep_context:  # history entries carry no empty context
        msg.pop("userInputMessageContext", None)
