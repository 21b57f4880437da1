"""Token counting, shared by every dialect.

`count` uses a real Claude BPE tokenizer that ships inside its wheel (anthropic-tokenizer, no
network): it serves count_tokens endpoints, where accuracy matters. `estimate` is a cheap
character-class heuristic for the hot path (a streamed reply's output tokens, a provisional
input figure before Kiro reports its context usage): the tokenizer costs ~0.4 µs per character,
which on an 80 KB Claude Code request would be more than the whole rest of the gateway's work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .conversation import Conversation

__all__ = ["count", "estimate", "count_request", "count_conversation", "have_tokenizer"]

_bpe_count: Callable[[str], int] | None = None
_loaded = False


def _tokenizer() -> Callable[[str], int] | None:
    """The BPE counter, loaded on first use (its vocabulary is ~11 MB of RSS nobody else needs)."""
    global _bpe_count, _loaded
    if not _loaded:
        _loaded = True
        try:
            from anthropic_tokenizer import count_tokens as bpe_count
        except Exception:  # the wheel is platform-specific; fall back rather than fail
            bpe_count = None
        _bpe_count = bpe_count
    return _bpe_count


def have_tokenizer() -> bool:
    return _tokenizer() is not None

# Claude 3+ tokenizers produce somewhat more tokens than the older public vocabulary does.
_CORRECTION = 1.1


def estimate(text: str) -> int:
    """Fast estimate: ~4 ASCII characters per token, ~1 token per non-ASCII character."""
    n = len(text)
    if not n:
        return 0
    if text.isascii():
        return (n + 3) >> 2
    extra = len(text.encode("utf-8")) - n  # 1–3 extra bytes per non-ASCII character
    wide = (extra + 1) >> 1
    return ((n - wide + 3) >> 2) + wide


def count(text: str) -> int:
    if not text:
        return 0
    bpe = _tokenizer()
    if bpe is None:
        return estimate(text)
    return int(bpe(text) * _CORRECTION + 0.5)


def count_request(system: str, texts: list[str], tools: list[dict[str, Any]], images: int = 0,
                  messages: int = 0) -> int:
    """Input tokens of a whole request, counted the way count_tokens endpoints report them."""
    total = count(system) if system else 0
    # Join before counting: one tokenizer call is much cheaper than many small ones.
    if texts:
        total += count("\n".join(texts))
    if tools:
        total += count(orjson.dumps(tools).decode())
    total += images * 1600 + messages * 4 + (8 if tools else 0)
    return max(1, total)


def count_conversation(conv: "Conversation") -> int:
    """Input tokens of a neutral conversation (every dialect's count-tokens endpoint)."""
    from .conversation import ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart

    texts: list[str] = []
    images = 0
    for m in conv.messages:
        for p in m.parts:
            if isinstance(p, TextPart):
                texts.append(p.text)
            elif isinstance(p, ToolResultPart):
                texts.append(p.content)
                images += len(p.images)
            elif isinstance(p, ToolCallPart):
                texts.append(p.name + " " + orjson.dumps(p.arguments).decode())
            elif isinstance(p, ThinkingPart):
                texts.append(p.text)
            elif isinstance(p, ImagePart):
                images += 1
    tools = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in conv.tools]
    return count_request(conv.system, texts, tools, images, len(conv.messages))
