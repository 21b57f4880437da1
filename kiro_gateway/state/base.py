"""The state store interface: what the gateway remembers across restarts and shares between processes.

Two backends implement it: `SQLiteStore` (the default, `state.db` beside config.json, one process)
and `RedisStore` (`stateUrl: "redis://…"`, any number of gateway processes). Callers never block on
it in the request path: writes are collected into a `Batch` and written behind by `StateWriter`;
reads happen at start-up, in admin calls, or when the local copy cannot answer (team mode).

What it holds:
- credential runtime state (the `Health` fields: counts as increments, the rest as values);
- stickiness (client session → credential, with an expiry);
- refresh coordination: a lock with expiry, and the newest tokens per credential (shared stores);
- account pacing: concurrency slots and request-rate windows;
- the request log, aggregates (5-minute buckets and all-time totals), client API keys and their usage.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "StateStore", "Batch", "HealthChange", "LogQuery", "LockTimeout", "StoreError", "HEALTH_COUNTS", "HEALTH_FIELDS",
    "AGG_FIELDS", "LATENCY_BUCKETS", "LATENCY_HIST", "TTFB_HIST", "AGG_SIZE", "BUCKET_SECONDS", "KEY_USAGE_FIELDS", "add_vector",
    "agg_key", "split_agg_key",
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


class StateStore(abc.ABC):
    """One backend. Methods are coroutines unless said otherwise; none blocks the event loop."""

    shared: bool = False  # True when other gateway processes may read and write the same state
    kind: str = "?"

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect and create what is missing."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""

    # -- write-behind ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def write(self, batch: Batch) -> None:
        """Apply a batch atomically where the backend can; tell other processes what changed."""

    # -- credential state and stickiness ---------------------------------------------------------

    @abc.abstractmethod
    async def load_health(self, cred_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Stored health per credential id (only those that have any)."""

    @abc.abstractmethod
    async def load_sticky(self) -> list[tuple[str, str, float]]:
        """(session, credential, expires) of unexpired sessions, for a cold start."""

    @abc.abstractmethod
    async def sticky_get(self, session: str) -> tuple[str, float] | None:
        """(credential, expires) of a session, if bound."""

    @abc.abstractmethod
    async def sticky_put(self, session: str, cred_id: str, expires: float) -> None:
        """Bind a session now (a new binding other processes must see before the next request)."""

    # -- what was learned about a Kiro account (docs/kiro-protocol.md) ------------------------------

    @abc.abstractmethod
    async def get_account_facts(self, cred_id: str) -> dict[str, Any] | None:
        """What the gateway learned about a credential's Kiro account (host that serves it,
        discovered profile ARN, model list): a small JSON object, or None."""

    @abc.abstractmethod
    async def put_account_facts(self, cred_id: str, facts: dict[str, Any]) -> None:
        """Replace a credential's learned facts (kept across restarts)."""

    # -- refresh coordination --------------------------------------------------------------------

    @abc.abstractmethod
    async def get_tokens(self, cred_id: str) -> dict[str, Any] | None:
        """The newest tokens another process stored for a credential (shared stores only)."""

    @abc.abstractmethod
    async def put_tokens(self, cred_id: str, tokens: dict[str, Any]) -> None:
        """Store freshly refreshed tokens and tell the other processes."""

    @abc.abstractmethod
    def lock(self, name: str, ttl: float, wait: float) -> AbstractAsyncContextManager[None]:
        """A lock held at most `ttl` seconds (it expires if its holder dies); raises LockTimeout
        when not had within `wait` seconds."""

    # -- pacing ----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def acquire_slot(self, scope: str, lease: str, cap: int, ttl: float) -> bool:
        """Take one of `cap` concurrency slots of `scope`; the slot expires after `ttl` unless renewed."""

    @abc.abstractmethod
    def release_slot(self, scope: str, lease: str) -> None:
        """Give a slot back. Returns at once; the release may finish in the background."""

    @abc.abstractmethod
    async def renew_slots(self, slots: list[tuple[str, str]], ttl: float) -> None:
        """Extend the slots this process still holds."""

    @abc.abstractmethod
    async def take_rate(self, scope: str, cap: int, window: float) -> float:
        """Count one event in a sliding window of `cap` per `window` s: 0 if admitted, else the
        seconds until one would be."""

    # -- request log, aggregates ------------------------------------------------------------------

    @abc.abstractmethod
    async def query_logs(self, query: LogQuery) -> tuple[list[dict[str, Any]], int]:
        """(page of entries, newest first; how many match)."""

    @abc.abstractmethod
    async def prune(self, max_count: int, max_age: float) -> None:
        """Forget log entries beyond the newest `max_count` or older than `max_age` seconds
        (0 = no limit), and aggregates older than a day."""

    @abc.abstractmethod
    async def aggregates(self, since: float) -> dict[tuple[int, str], list[float]]:
        """Time-bucketed aggregates from `since` on."""

    @abc.abstractmethod
    async def totals(self) -> dict[str, list[float]]:
        """All-time aggregates per label set."""

    # -- client API keys --------------------------------------------------------------------------

    @abc.abstractmethod
    async def list_keys(self) -> list[dict[str, Any]]:
        """Every stored key (hashes, never secrets)."""

    @abc.abstractmethod
    async def save_key(self, key: dict[str, Any]) -> None:
        """Create or replace a key by its id."""

    @abc.abstractmethod
    async def delete_key(self, key_id: str) -> bool:
        """Remove a key; False when there was none."""

    @abc.abstractmethod
    async def key_usage(self, day: str) -> dict[str, list[float]]:
        """Usage per key id on a UTC day ("YYYY-MM-DD")."""

    # -- stored Responses (the Responses API's previous_response_id) -------------------------------

    @abc.abstractmethod
    async def put_response(self, response_id: str, owner: str, data: bytes, expires: float) -> None:
        """Keep one stored Response (an opaque record) for `owner` until `expires` (epoch seconds)."""

    @abc.abstractmethod
    async def get_response(self, response_id: str) -> tuple[str, bytes] | None:
        """(owner, record) of an unexpired stored Response."""

    @abc.abstractmethod
    async def delete_response(self, response_id: str) -> bool:
        """Forget a stored Response; False when there was none."""

    @abc.abstractmethod
    async def touch_responses(self, response_ids: list[str], expires: float) -> None:
        """Keep these stored Responses until `expires` (a continued exchange keeps its ancestors)."""

    # -- notifications between processes ----------------------------------------------------------

    def subscribe(self, callback: Callable[[str, Any], None]) -> None:  # noqa: B027 - no-op by default
        """Call `callback(topic, data)` for what other processes (and this one) publish."""

    async def publish(self, topic: str, data: Any = None) -> None:  # noqa: B027 - no-op by default
        """Tell every process sharing the store (no-op for a one-process store)."""
