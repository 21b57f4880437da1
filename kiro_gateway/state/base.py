"""What the rest of the gateway imports from the state store: the records (records.py) and the
protocols (protocols.py), under one name.

Two backends implement the protocols: `SQLiteStore` (the default, `state.db` beside config.json,
one process) and `RedisStore` (`stateUrl: "redis://…"`, any number of gateway processes). Callers
never block on the store in the request path: writes are collected into a `Batch` and written behind
by `StateWriter`; reads happen at start-up, in admin calls, or when the local copy cannot answer
(team mode).
"""

from __future__ import annotations

from .protocols import Aggregates, EventHandler, Events, FactsStore, HealthStore, KeyStore, Leases, Lifecycle, \
    Locks, RequestLogStore, SessionSnapshot, SessionStore, StateStore, StoredResponses, TokenStore, WriteBehind
from .records import AGG_FIELDS, AGG_SIZE, BUCKET_SECONDS, HEALTH_COUNTS, HEALTH_FIELDS, KEY_USAGE_FIELDS, \
    LATENCY_BUCKETS, LATENCY_HIST, TTFB_HIST, Batch, HealthChange, LockTimeout, LogQuery, StoreError, add_vector, \
    agg_key, search_text, split_agg_key

__all__ = [
    "StateStore", "Lifecycle", "WriteBehind", "HealthStore", "FactsStore", "Locks", "Leases", "RequestLogStore",
    "Aggregates", "KeyStore", "StoredResponses", "SessionSnapshot", "SessionStore", "TokenStore", "Events",
    "EventHandler",
    "Batch", "HealthChange", "LogQuery", "LockTimeout", "StoreError", "HEALTH_COUNTS", "HEALTH_FIELDS", "AGG_FIELDS",
    "LATENCY_BUCKETS", "LATENCY_HIST", "TTFB_HIST", "AGG_SIZE", "BUCKET_SECONDS", "KEY_USAGE_FIELDS", "add_vector",
    "agg_key", "split_agg_key", "search_text",
]
