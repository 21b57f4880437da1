"""JSON no encoder here would write, for the dialects' fuzz: nesting past every limit, numbers past
64 bits and past a double. A strategy draws a placeholder string; `expand` swaps it for the raw text
in the serialised body (orjson would refuse to write these)."""

from __future__ import annotations

from hypothesis import strategies as st

RAW = {
    "\x01deep130": b"[" * 130 + b"1" + b"]" * 130,
    "\x01deep300": b"[" * 300 + b"1" + b"]" * 300,
    "\x01deepobj260": b'{"a":' * 260 + b"1" + b"}" * 260,
    "\x01deep2000": b"[" * 2000 + b"]" * 2000,
    "\x01bigint": b"1" + b"0" * 400,
    "\x01u64": b"18446744073709551616",
    "\x01i64": b"-9223372036854775809",
    "\x01maxfloat": b"1.7976931348623157e308",
    "\x01overflow": b"1e999",
    "\x01underflow": b"-1e-400",
}

leaves = st.sampled_from(list(RAW))


def expand(raw: bytes) -> bytes:
    for key, value in RAW.items():
        raw = raw.replace(b'"\\u0001' + key[1:].encode() + b'"', value)
    return raw
