"""Split Kiro's in-band `<thinking>…</thinking>` text into thinking and answer (docs/kiro-protocol.md, “Thinking”).

Kiro has no native reasoning channel: when the prompt carries `<thinking_mode>`, the model writes
its reasoning as `<thinking>\\n…\\n</thinking>\\n\\n` before the answer, inside ordinary text
chunks. The tags can be split across chunks anywhere.

Rules chosen (a blend of kiro.rs and jwadow, for robustness):
- Only a `<thinking>` at the very start of the reply (after whitespace) opens a thinking block, so
  an answer that talks *about* the tag is never mistaken for reasoning.
- `</thinking>` closes it only when followed by a blank line (`\\n\\n`) and not preceded by a quote
  character (so a quoted "`</thinking>`" inside reasoning does not end it); at the end of the
  stream, or when a tool call starts, a tag followed only by whitespace also closes it.
- One newline after the opening tag and before the closing tag is dropped.
- Only the first thinking block is extracted; later text passes through untouched, without any
  buffering, so the splitter costs nothing once the answer has started.
"""

from __future__ import annotations

OPEN = "<thinking>"
CLOSE = "</thinking>"
# Characters that mark a tag as quoted, i.e. written about rather than used. kiro.rs also counts
# punctuation such as "." here, but reasoning that ends a sentence right before the tag
# ("…then answer.</thinking>") is common, so only quoting characters count (AIClient-2-API's set).
QUOTES = frozenset("`\"'\\")
_HOLD = len(CLOSE) + 1  # a closing tag plus one char of its "\n\n" may straddle chunks

PRE, THINK, TEXT = 0, 1, 2

__all__ = ["ThinkingSplitter", "PRE", "THINK", "TEXT"]


class ThinkingSplitter:
    """Feed text chunks; get back ("thinking" | "text" | "end", str) pieces in order."""

    __slots__ = ("state", "buf", "strip_nl", "saw_thinking", "strip_lead")

    def __init__(self, enabled: bool = True) -> None:
        self.state = PRE if enabled else TEXT
        self.buf = ""
        self.strip_nl = False
        self.saw_thinking = False
        self.strip_lead = False  # newlines right after </thinking> belong to the separator

    def feed(self, chunk: str) -> list[tuple[str, str]]:
        if self.state == TEXT:
            if self.strip_lead:
                chunk = chunk.lstrip("\n")
                self.strip_lead = not chunk
            return [("text", chunk)] if chunk else []
        self.buf += chunk
        out: list[tuple[str, str]] = []
        if self.state == PRE:
            stripped = self.buf.lstrip()
            if stripped.startswith(OPEN):
                self.state = THINK
                self.saw_thinking = True
                self.buf = stripped[len(OPEN):]
                self.strip_nl = True
            elif OPEN.startswith(stripped):
                return out  # maybe a split opening tag: wait
            else:
                self.state = TEXT
                text, self.buf = stripped, ""
                if text:
                    out.append(("text", text))
                return out
        self._scan(out, final=False)
        return out

    def _scan(self, out: list[tuple[str, str]], final: bool) -> None:
        if self.strip_nl:
            if self.buf in ("", "\r") and not final:
                return  # the newline after the opening tag may still be on its way
            self.strip_nl = False
            if self.buf.startswith("\r\n"):
                self.buf = self.buf[2:]
            elif self.buf.startswith("\n"):
                self.buf = self.buf[1:]
        buf = self.buf
        start = 0
        while True:
            idx = buf.find(CLOSE, start)
            if idx < 0:
                break
            if idx > 0 and buf[idx - 1] in QUOTES:
                start = idx + 1
                continue
            after = buf[idx + len(CLOSE):]
            if after.startswith("\n\n"):
                self._close(out, buf[:idx], after[2:])
                return
            if not after.strip():
                if final:
                    self._close(out, buf[:idx], "")
                    return
                # Undecided until more arrives: emit what is surely thinking, hold the rest.
                cut = idx - 1 if buf[idx - 1 : idx] == "\n" else idx
                self._emit_thinking(out, buf[:cut])
                self.buf = buf[cut:]
                return
            start = idx + 1
        if final:
            self._close(out, buf, "")
            return
        keep = min(len(buf), _HOLD)
        self._emit_thinking(out, buf[: len(buf) - keep])
        self.buf = buf[len(buf) - keep:]

    def _emit_thinking(self, out: list[tuple[str, str]], text: str) -> None:
        if text:
            out.append(("thinking", text))

    def _close(self, out: list[tuple[str, str]], thinking: str, rest: str) -> None:
        if thinking.endswith("\n"):
            thinking = thinking[:-1]
        self._emit_thinking(out, thinking)
        out.append(("end", ""))
        self.state = TEXT
        self.buf = ""
        rest = rest.lstrip("\n")
        self.strip_lead = not rest
        if rest:
            out.append(("text", rest))

    def finish(self) -> list[tuple[str, str]]:
        """End of stream, or a tool call starting: settle whatever is held back."""
        out: list[tuple[str, str]] = []
        if self.state == PRE:
            self.state = TEXT
            text, self.buf = self.buf.strip(), ""
            if text:
                out.append(("text", text))
        elif self.state == THINK:
            self._scan(out, final=True)
        return out
