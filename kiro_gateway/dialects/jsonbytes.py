"""JSON bytes that are kept: orjson's `dumps` hands back bytes whose allocation is several times
their length (76 KB of JSON in a 260 KB block), harmless for a reply sent at once, not for what a
stream or a store holds for minutes. `kept` is the exact-size copy of such bytes."""

from __future__ import annotations

import orjson

__all__ = ["kept", "dumps_kept"]


def kept(data: bytes) -> bytes:
    return bytes(memoryview(data))


def dumps_kept(value: object) -> bytes:
    return bytes(memoryview(orjson.dumps(value)))
