"""Random ids for requests and replies: uuid-shaped, cheap (no UUID objects on the hot path).

They only need to be unique, not unguessable, so Python's fast PRNG serves (seeded from the OS).
"""

from __future__ import annotations

import random

__all__ = ["random_uuid", "random_hex", "random_chars", "jitter"]

_bits = random.SystemRandom().getrandbits(64)
_rng = random.Random(_bits)
_getrandbits = _rng.getrandbits


def random_uuid() -> str:
    """A version-4-shaped UUID string."""
    h = f"{_getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def random_hex(chars: int) -> str:
    return f"{_getrandbits(chars * 4):0{chars}x}"


def random_chars(n: int, alphabet: str) -> str:
    """`n` characters drawn from `alphabet`."""
    return "".join(_rng.choices(alphabet, k=n))


def jitter(low: float, high: float) -> float:
    """A random delay in [low, high] for spreading retries and waits (the process's own PRNG)."""
    return _rng.uniform(low, high)
