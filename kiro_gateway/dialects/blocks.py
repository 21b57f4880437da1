"""The walk over a message's content that every dialect's parser makes.

A message's content is a string or an array of blocks (parts, in OpenAI's and Gemini's words):
text, images, tool calls, tool results and each API's extras. The walk is the same everywhere —
a string is one text part, an array must hold objects, each named by its place for error
messages — while what a block becomes is the dialect's own, so the parsers hand in that step.
The dialects differ only in how they word the shape errors and name an entry: `Wording` says it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..core.conversation import GatewayError, ImagePart, Part, TextPart

__all__ = ["Wording", "entries", "content_parts", "result_content"]


@dataclass(frozen=True, slots=True)
class Wording:
    bad: Callable[[str, str], GatewayError]  # the dialect's 400 for a field
    not_list: str  # content that is neither a string nor an array
    not_object: str  # an entry of the array that is not an object
    missing: str | None = None  # content left out; None: worded as `not_list`
    dotted: bool = False  # entries named `content.0` (Anthropic), else `content[0]`


def entries(content: Any, where: str, wording: Wording) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """The blocks of a content array, each with its index and its place (`where` of its errors)."""
    if not isinstance(content, list):
        raise wording.bad(where, wording.missing if content is None and wording.missing else wording.not_list)
    for i, block in enumerate(content):
        w = f"{where}.{i}" if wording.dotted else f"{where}[{i}]"
        if not isinstance(block, dict):
            raise wording.bad(w, wording.not_object)
        yield i, w, block


def content_parts(content: Any, where: str, wording: Wording,
                  part: Callable[[dict[str, Any], str], Part | None]) -> list[Part]:
    """A message's content as parts: a string is one text part (none when empty); an array's
    blocks are each turned into a part by `part` (block, place), which returns None to skip one."""
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    out: list[Part] = []
    for _, w, block in entries(content, where, wording):
        p = part(block, w)
        if p is not None:
            out.append(p)
    return out


def result_content(content: Any, where: str, wording: Wording,
                   block_value: Callable[[dict[str, Any], str], str | ImagePart | None]) -> tuple[str, list[ImagePart]]:
    """A tool result's content: a string as it is; an array's blocks each read by `block_value`
    (block, place) as text, an image or nothing, the texts joined by new lines, the images apart."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[ImagePart] = []
    for _, w, block in entries(content, where, wording):
        v = block_value(block, w)
        if isinstance(v, ImagePart):
            images.append(v)
        elif v is not None:
            texts.append(v)
    return "\n".join(texts), images
