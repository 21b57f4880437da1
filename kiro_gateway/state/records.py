"""The records the state store reads and writes: the write-behind batch, the log query, the vector
layouts of aggregates and key usage, and the two errors a store raises. No backend code here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Batch", "HealthChange", "LogQuery", "LockTimeout", "StoreError", "HEALTH_COUNTS", "HEALTH_FIELDS",
    "AGG_FIELDS", "LATENCY_BUCKETS", "LATENCY_HIST", "TTFB_HIST", "AGG_SIZE", "BUCKET_SECONDS", "KEY_USAGE_FIELDS", "add_vector",
    "agg_key", "split_agg_key", "search_text",
]

# Health fields: counts travel as increments (several processes add to them), the rest as values.
HEALTH_COUNTS = ("success_count", "failure_count")
HEALTH_FIELDS = ("consecutive_failures", "refresh_failures", "last_used", "cooldown_until", "exhausted_until",
                 "unhealthy_until", "reason")

# One aggregate is a vector of these numbers, then one count per latency bucket (the last is +Inf),
# then the same buckets for the time to first byte. (Vectors stored before a field was added are
# shorter: readers pad or slice.)
AGG_FIELDS = ("requests", "errors", "tokens_in", "tokens_out", "credits", "retries", "latency_sum",
              "ttfb_sum", "ttfb_count")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)  # seconds
LATENCY_HIST = slice(len(AGG_FIELDS), len(AGG_FIELDS) + len(LATENCY_BUCKETS) + 1)
TTFB_HIST = slice(LATENCY_HIST.stop, LATENCY_HIST.stop + len(LATENCY_BUCKETS) + 1)
AGG_SIZE = TTFB_HIST.stop
BUCKET_SECONDS = 300  # aggregates per 5 minutes; bucket 0 holds the all-time totals
KEY_USAGE_FIELDS = ("requests", "tokens_in", "tokens_out", "credits", "errors")

_SEP = "\x1f"


def agg_key(dialect: str, model: str, credential: str, status: int) -> str:
    """The label set of an aggregate, as one string (the stores keep it opaque)."""
    return f"{dialect}{_SEP}{model}{_SEP}{credential}{_SEP}{status}"


def split_agg_key(key: str) -> tuple[str, str, str, int]:
    d, m, c, s = key.split(_SEP)
    return d, m, c, int(s)


def add_vector(into: list[float], other: list[float]) -> None:
    for i, v in enumerate(other):
        if v:
            into[i] += v


class LockTimeout(Exception):
    """The lock was not had within the wait allowed."""


class StoreError(Exception):
    """The store could not be reached (Redis down): callers in the request path fall back to memory."""


@dataclass(slots=True)
class HealthChange:
    incr: dict[str, int] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Batch:
    """Everything written behind in one go: one transaction (SQLite) or one pipeline (Redis)."""

    health: dict[str, HealthChange] = field(default_factory=dict)
    sticky: dict[str, tuple[str, float]] = field(default_factory=dict)  # session → (credential, expires)
    sticky_dropped: set[str] = field(default_factory=set)  # credentials whose sessions are forgotten
    forget: set[str] = field(default_factory=set)  # credentials deleted: their state goes too
    logs: list[dict[str, Any]] = field(default_factory=list)
    aggregates: dict[tuple[int, str], list[float]] = field(default_factory=dict)  # (bucket, agg_key) → vector
    key_usage: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (key id, day) → vector

    def empty(self) -> bool:
        return not (self.health or self.sticky or self.sticky_dropped or self.forget or self.logs
                    or self.aggregates or self.key_usage)


@dataclass(slots=True)
class LogQuery:
    since: float | None = None
    until: float | None = None
    status: str | None = None  # "429", "4xx", "error" (>= 400) or "ok" (< 400)
    model: str | None = None  # asked or Kiro model, exact
    credential: str | None = None
    key: str | None = None  # client key name
    text: str | None = None  # substring of model, user agent, key, error…
    limit: int = 100
    offset: int = 0

    def status_range(self) -> tuple[int, int] | None:
        s = (self.status or "").strip().lower()
        if not s:
            return None
        if s == "error":
            return 400, 999
        if s == "ok":
            return 0, 399
        if len(s) == 3 and s[0].isdigit() and s[1:] == "xx":
            return int(s[0]) * 100, int(s[0]) * 100 + 99
        if s.isdigit():
            return int(s), int(s)
        raise ValueError("status must be a code (429), a class (4xx), 'error' or 'ok'")

    def matches(self, row: dict[str, Any]) -> bool:
        """The filter in Python (stores that cannot express it in a query)."""
        t = row.get("time", 0)
        if (self.since is not None and t < self.since) or (self.until is not None and t > self.until):
            return False
        rng = self.status_range()
        if rng and not (rng[0] <= (row.get("status") or 0) <= rng[1]):
            return False
        if self.model and self.model not in (row.get("model"), row.get("kiroModel")):
            return False
        if self.credential and str(row.get("credential")) != self.credential:
            return False
        if self.key and row.get("key") != self.key:
            return False
        return not self.text or self.text.lower() in search_text(row)


def search_text(row: dict[str, Any]) -> str:
    parts = (row.get("model"), row.get("kiroModel"), row.get("userAgent"), row.get("key"), row.get("error"),
             row.get("errorMessage"), row.get("dialect"), row.get("credential"))
    return " ".join(str(p) for p in parts if p).lower()
