"""How deep a parsed JSON value nests, checked once where client JSON comes in.

orjson parses 1024 levels but writes only 254, and the gateway re-serialises what clients send
(Kiro's request, the request log, stored Responses). One limit at the edge, well below both, turns
a pathological body into a 400 instead of a failure deep inside.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_DEPTH", "too_deep"]

MAX_DEPTH = 128  # real requests nest a few dozen levels at most (tool schemas inside messages)


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` has containers nested more than `limit` levels. Iterative (no recursion
    limit to hit) and visits containers only, so strings and numbers cost nothing."""
    if not isinstance(value, (dict, list)):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return True
        items = v.values() if isinstance(v, dict) else v
        for x in items:
            if isinstance(x, (dict, list)) and x:
                stack.append((x, depth + 1))
    return False
