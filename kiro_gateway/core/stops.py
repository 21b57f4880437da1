"""Stop sequences: Kiro has no such setting, so the gateway ends the answer where one appears.

A filter over the reply events, like JSON mode: answer text passes through, except its last few
characters when they could be the start of a stop sequence split across two chunks; those wait
for the next chunk. When a stop sequence appears, the text before it goes out, then an estimated
usage and `Stop("stop_sequence", the sequence)`, and the rest of Kiro's reply is not read (the
upstream stream is closed). Thinking and tool calls are not searched, as with Anthropic's API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from .conversation import Ping, ReplyEvent, Stop, TextDelta, ThinkingDelta, Usage
from .tokencount import estimate

__all__ = ["stop_at", "StopScanner"]


class StopScanner:
    """Finds the first stop sequence completed in text that arrives in pieces."""

    __slots__ = ("sequences", "held")

    def __init__(self, sequences: Sequence[str]) -> None:
        self.sequences = [s for s in sequences if s]
        self.held = ""  # text not released yet: it may be where a stop sequence begins

    def feed(self, text: str) -> tuple[str, str | None]:
        """(text that can go out now, the stop sequence found or None). After a hit, the text
        returned is everything before the sequence and the scanner should not be fed again."""
        text = self.held + text
        # The sequence completed first wins (as when a model stops token by token); of two
        # completed at the same character, the longer.
        hit = end = -1
        found = None
        for s in self.sequences:
            i = text.find(s)
            if i != -1 and (end == -1 or i + len(s) < end or (i + len(s) == end and i < hit)):
                hit, end, found = i, i + len(s), s
        if found is not None:
            self.held = ""
            return text[:hit], found
        keep = 0  # the longest end of `text` that a stop sequence starts with
        for s in self.sequences:
            for n in range(min(len(s) - 1, len(text)), keep, -1):
                if s.startswith(text[-n:]):
                    keep = n
                    break
        self.held = text[len(text) - keep:] if keep else ""
        return (text[: len(text) - keep] if keep else text), None

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held


async def stop_at(batches: AsyncIterator[list[ReplyEvent]], sequences: Sequence[str],
                  input_estimate: int) -> AsyncIterator[list[ReplyEvent]]:
    scanner = StopScanner(sequences)
    produced = 0  # estimated output tokens so far, for the usage of a reply cut short
    try:
        async for batch in batches:
            out: list[ReplyEvent] = []
            for ev in batch:
                if type(ev) is TextDelta:
                    text, found = scanner.feed(ev.text)
                    if text:
                        out.append(TextDelta(text))
                        produced += estimate(text)
                    if found is not None:
                        out += [Usage(input_estimate, produced), Stop("stop_sequence", stop_sequence=found)]
                        yield out
                        return
                    continue
                if type(ev) is not Ping:
                    held = scanner.flush()
                    if held:
                        out.append(TextDelta(held))
                if type(ev) is ThinkingDelta:
                    produced += estimate(ev.text)
                out.append(ev)
            if out:
                yield out
        held = scanner.flush()
        if held:
            yield [TextDelta(held)]
    finally:
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            await aclose()
