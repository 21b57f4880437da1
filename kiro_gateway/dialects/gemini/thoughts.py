"""Thought signatures: the reasoning itself, packed so that it survives the client's round trip.

Gemini CLI drops thought parts from its history but echoes each `thoughtSignature` on the part it
came with (Gemini CLI does). Packing the thinking text into the signature lets the next
request give Kiro the reasoning back, as Anthropic clients do with signed thinking blocks.

Format: "kgt1" + hex(zlib(text)), padded with "z" to a multiple of 4 characters. Every character
is in the base64 alphabet and nothing needs padding, so SDKs that base64-decode the signature
into bytes (google-genai types it as bytes) re-encode it to the identical string.
"""

from __future__ import annotations

import zlib

__all__ = ["encode_signature", "decode_signature"]

_PREFIX = "kgt1"
_MAX_TEXT = 1_000_000  # a decompression bomb in a forged signature stops here


def encode_signature(thinking: str) -> str:
    sig = _PREFIX + zlib.compress(thinking.encode("utf-8"), 6).hex()
    return sig + "z" * (-len(sig) % 4)


def decode_signature(sig: object) -> str | None:
    """The thinking text packed in `sig`, or None for any other signature (e.g. Google's)."""
    if not isinstance(sig, str) or not sig.startswith(_PREFIX):
        return None
    try:
        packed = bytes.fromhex(sig[len(_PREFIX):].rstrip("z"))
        d = zlib.decompressobj()
        raw = d.decompress(packed, _MAX_TEXT)
        if d.unconsumed_tail or not d.eof:
            return None
        return raw.decode("utf-8")
    except (ValueError, zlib.error):
        return None
