"""The garbage collector kept off the hot path, and its pauses measured.

A request parses a client body (an 80 KB Claude Code request is thousands of dicts and lists),
so CPython's default thresholds (a young collection every 700 allocations) ran several young
collections inside every `orjson.loads`, each promoting the half-built tree; what is promoted
twice reaches the oldest generation, and the full collections that follow walked every object
start-up had built (modules, the tokenizer's tables, the route table), ~25 ms each at C=50.

`settle()` runs once start-up is over: one collection, then `gc.freeze()` moves every survivor
to the permanent generation (never scanned again), and the thresholds go up so that young
collections are rare and a request's transient objects are freed by reference counting before
any collection sees them. Full collections still happen, rarely, and only over what is not
frozen: cyclic garbage is still reclaimed.

`GCWatch` times every collection (gc.callbacks) for /metrics: count and pause per generation,
the longest pause.
"""

from __future__ import annotations

import gc
import time
from typing import Any

__all__ = ["settle", "GCWatch", "WATCH", "THRESHOLDS", "parse_thresholds"]

# young: a collection every 50,000 net allocations (a few requests' worth, not a few per request);
# middle: every 20 young ones; old: after 100 middle ones, and CPython's own rule still applies
# (only when what was promoted since the last full collection is a quarter of what it kept).
THRESHOLDS = (50_000, 20, 100)


def parse_thresholds(text: str | None) -> tuple[int, int, int]:
    """`"a,b,c"` (an operator's override) → thresholds; None or empty → the default."""
    if not text:
        return THRESHOLDS
    a, b, c = (int(x) for x in text.split(","))
    return a, b, c


def settle(thresholds: tuple[int, int, int] = THRESHOLDS) -> int:
    """After start-up: collect, freeze the survivors, raise the thresholds. Returns how many
    objects were frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    return gc.get_freeze_count()


class GCWatch:
    """Collections and their pause time per generation, from gc.callbacks (installed once)."""

    __slots__ = ("counts", "seconds", "longest", "_start", "_installed")

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._start = 0.0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        took = time.perf_counter() - self._start
        gen = info.get("generation", 0)
        self.counts[gen] += 1
        self.seconds[gen] += took
        if took > self.longest:
            self.longest = took


WATCH = GCWatch()
