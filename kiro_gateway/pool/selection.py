"""Which credential serves: load-balancing strategies and session stickiness.

- `priority`: the best (lowest) priority that can serve; stays there while it can.
- `balanced`: the least used (fewest successes, then fewest in flight), ties by priority.
- `round_robin`: the next in turn.
- `random`: in random order, drawn like cards from a shuffled deck of the accounts (refilled when
  empty), so the order shows no pattern yet every account gets its share.
An account that joins a used pool (added, or back after a long rest) starts `balanced` counting
from the least used of the others (`ramp`), so it takes its share, not all traffic until it has
caught up.
A client session keeps its credential for `sticky_seconds` after its last request, so one
conversation does not hop between accounts (Kiro's caching and risk control both favour that).
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict

from .credential import Credential
from .health import Health

__all__ = ["Sticky", "order_candidates", "ramp_offset"]

_RANDOM = random.Random()


class Sticky:
    """session key → credential id, expiring `ttl` seconds after last use; bounded."""

    def __init__(self, ttl: float, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._map: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, key: str | None, now: float | None = None) -> str | None:
        if not key:
            return None
        hit = self._map.get(key)
        if hit is None:
            return None
        if hit[1] < (now or time.time()):
            del self._map[key]
            return None
        return hit[0]

    def put(self, key: str | None, cred_id: str, now: float | None = None) -> str | None:
        """Bind (or re-arm) a session; returns the credential it was bound to before, if any."""
        if not key or self.ttl <= 0:
            return None
        old = self._map.get(key)
        self.restore(key, cred_id, (now or time.time()) + self.ttl)
        return old[0] if old else None

    def restore(self, key: str, cred_id: str, expires: float) -> None:
        """Bind with a known expiry (loaded from the state store)."""
        self._map[key] = (cred_id, expires)
        self._map.move_to_end(key)
        while len(self._map) > self.max_entries:
            self._map.popitem(last=False)

    def expires(self, key: str) -> float:
        hit = self._map.get(key)
        return hit[1] if hit else 0.0

    def clear(self) -> None:
        self._map.clear()

    def drop(self, cred_id: str) -> None:
        for k in [k for k, (c, _) in self._map.items() if c == cred_id]:
            del self._map[k]


def ramp_offset(cid: str, creds: list[Credential], health: dict[str, Health]) -> int:
    """How far behind the least used other account `cid` is: what `balanced` counts it from."""
    others = [health[c.id].success_count for c in creds if c.id != cid and c.id in health and not c.disabled]
    own = health[cid].success_count if cid in health else 0
    return max(0, min(others) - own) if others else 0


def order_candidates(creds: list[Credential], health: dict[str, Health], mode: str, rr_counter: int,
                     ramp: dict[str, int] | None = None, deck: list[str] | None = None) -> list[Credential]:
    """Credentials in the order they should be tried, under `mode`."""
    if mode == "balanced":
        ramp = ramp or {}
        return sorted(creds, key=lambda c: (health[c.id].success_count + ramp.get(c.id, 0) + health[c.id].in_flight,
                                            c.priority, c.index))
    if mode == "random":
        out = list(creds)
        _RANDOM.shuffle(out)
        if deck is not None and out:
            ids = {c.id for c in out}
            chosen = next((cid for cid in deck if cid in ids), None)
            if chosen is None:
                deck[:] = [c.id for c in out]  # already shuffled
                chosen = deck[0]
            deck.remove(chosen)
            out.sort(key=lambda c: c.id != chosen)
        return out
    ranked = sorted(creds, key=lambda c: (c.priority, c.index))
    if mode == "round_robin" and ranked:
        k = rr_counter % len(ranked)
        return ranked[k:] + ranked[:k]
    return ranked
