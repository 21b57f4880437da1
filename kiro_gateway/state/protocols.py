"""What a state store can do, one protocol per concern.

Every backend offers the concerns in `StateStore` (the whole store the app is built on). Three more
only make sense when several gateway processes share one store, so only a shared backend (Redis)
offers them, and callers ask for them with `isinstance` (the protocols are runtime-checkable):

    if isinstance(store, SessionStore):
        hit = await store.sticky_get(session)

A one-process store (SQLite) keeps session bindings through the write-behind batch and hands them
back at a cold start (`SessionSnapshot`); the credentials file is the one home of its tokens, and
nobody else is listening for its events.

| protocol          | SQLiteStore | RedisStore |
|-------------------|-------------|------------|
| Lifecycle         | yes         | yes        |
| WriteBehind       | yes         | yes        |
| HealthStore       | yes         | yes        |
| FactsStore        | yes         | yes        |
| Locks, Leases     | yes (local) | yes        |
| RequestLogStore   | yes         | yes        |
| Aggregates        | yes         | yes        |
| KeyStore          | yes         | yes        |
| StoredResponses   | yes         | yes        |
| SessionSnapshot   | yes         | -          |
| SessionStore      | -           | yes        |
| TokenStore        | -           | yes        |
| Events            | -           | yes        |

Methods are coroutines unless said otherwise; none blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from .records import Batch, LogQuery

__all__ = [
    "Lifecycle", "WriteBehind", "HealthStore", "FactsStore", "Locks", "Leases", "RequestLogStore", "Aggregates",
    "KeyStore", "StoredResponses", "SessionSnapshot", "SessionStore", "TokenStore", "Events", "StateStore",
    "EventHandler",
]

EventHandler = Callable[[str, Any], None]


@runtime_checkable
class Lifecycle(Protocol):
    kind: str  # "sqlite", "redis": for messages and the status page
    shared: bool  # True when other gateway processes may read and write the same state

    async def open(self) -> None:
        """Connect and create what is missing."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


@runtime_checkable
class WriteBehind(Protocol):
    async def write(self, batch: Batch) -> None:
        """Apply a batch atomically where the backend can; a shared store tells the other processes
        what changed."""
        ...


@runtime_checkable
class HealthStore(Protocol):
    async def load_health(self, cred_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Stored health per credential id (only those that have any)."""
        ...


@runtime_checkable
class FactsStore(Protocol):
    """What the gateway learned about a credential's Kiro account: the host that serves it, the
    discovered profile ARN, the model list (a small JSON object, kept across restarts)."""

    async def get_account_facts(self, cred_id: str) -> dict[str, Any] | None:
        ...

    async def put_account_facts(self, cred_id: str, facts: dict[str, Any]) -> None:
        ...


@runtime_checkable
class Locks(Protocol):
    def lock(self, name: str, ttl: float, wait: float) -> AbstractAsyncContextManager[None]:
        """A lock held at most `ttl` seconds (it expires if its holder dies); raises LockTimeout
        when not had within `wait` seconds."""
        ...


@runtime_checkable
class Leases(Protocol):
    """Account pacing: concurrency slots that expire unless renewed, and sliding rate windows."""

    async def acquire_slot(self, scope: str, lease: str, cap: int, ttl: float) -> bool:
        """Take one of `cap` concurrency slots of `scope`; the slot expires after `ttl` unless renewed."""
        ...

    def release_slot(self, scope: str, lease: str) -> None:
        """Give a slot back. Returns at once; the release may finish in the background."""
        ...

    async def renew_slots(self, slots: list[tuple[str, str]], ttl: float) -> None:
        """Extend the slots this process still holds."""
        ...

    async def take_rate(self, scope: str, cap: int, window: float) -> float:
        """Count one event in a sliding window of `cap` per `window` s: 0 if admitted, else the
        seconds until one would be."""
        ...

    async def reserve_start(self, scope: str, gap: float) -> float:
        """Reserve the next start in `scope`, `gap` s after the one reserved before it (or now, if
        that is later): the seconds to wait for it, 0 meaning now."""
        ...


@runtime_checkable
class RequestLogStore(Protocol):
    async def query_logs(self, query: LogQuery) -> tuple[list[dict[str, Any]], int]:
        """(page of entries, newest first; how many match)."""
        ...

    async def prune(self, max_count: int, max_age: float) -> None:
        """Forget log entries beyond the newest `max_count` or older than `max_age` seconds
        (0 = no limit), and whatever else has outlived its keep (aggregates older than a day)."""
        ...


@runtime_checkable
class Aggregates(Protocol):
    async def aggregates(self, since: float) -> dict[tuple[int, str], list[float]]:
        """Time-bucketed aggregates from `since` on."""
        ...

    async def totals(self) -> dict[str, list[float]]:
        """All-time aggregates per label set."""
        ...


@runtime_checkable
class KeyStore(Protocol):
    async def list_keys(self) -> list[dict[str, Any]]:
        """Every stored client key (hashes, never secrets)."""
        ...

    async def save_key(self, key: dict[str, Any]) -> None:
        """Create or replace a key by its id."""
        ...

    async def delete_key(self, key_id: str) -> bool:
        """Remove a key; False when there was none."""
        ...

    async def key_usage(self, day: str) -> dict[str, list[float]]:
        """Usage per key id on a UTC day ("YYYY-MM-DD")."""
        ...


@runtime_checkable
class StoredResponses(Protocol):
    """The Responses API's stored Responses (what previous_response_id points at)."""

    async def put_response(self, response_id: str, owner: str, data: bytes, expires: float) -> None:
        """Keep one stored Response (an opaque record) for `owner` until `expires` (epoch seconds)."""
        ...

    async def get_response(self, response_id: str) -> tuple[str, bytes] | None:
        """(owner, record) of an unexpired stored Response."""
        ...

    async def delete_response(self, response_id: str) -> bool:
        """Forget a stored Response; False when there was none."""
        ...

    async def touch_responses(self, response_ids: list[str], expires: float) -> None:
        """Keep these stored Responses until `expires` (a continued exchange keeps its ancestors)."""
        ...


@runtime_checkable
class SessionSnapshot(Protocol):
    """A one-process store: the session bindings written behind, handed back at a cold start."""

    async def load_sticky(self) -> list[tuple[str, str, float]]:
        """(session, credential, expires) of unexpired sessions."""
        ...


@runtime_checkable
class SessionStore(Protocol):
    """A shared store: session bindings read and written through, so every process agrees at once."""

    async def sticky_get(self, session: str) -> tuple[str, float] | None:
        """(credential, expires) of a session, if bound."""
        ...

    async def sticky_put(self, session: str, cred_id: str, expires: float) -> None:
        """Bind a session now (a new binding other processes must see before the next request)."""
        ...


@runtime_checkable
class TokenStore(Protocol):
    """A shared store: the newest tokens per credential, so one process refreshes for all."""

    async def get_tokens(self, cred_id: str) -> dict[str, Any] | None:
        """The newest tokens a process stored for a credential."""
        ...

    async def put_tokens(self, cred_id: str, tokens: dict[str, Any]) -> None:
        """Store freshly refreshed tokens and tell the other processes."""
        ...


@runtime_checkable
class Events(Protocol):
    """A shared store: notices between the processes that share it."""

    def subscribe(self, callback: EventHandler) -> None:
        """Call `callback(topic, data)` for what every process (this one too) publishes."""
        ...

    async def publish(self, topic: str, data: Any = None) -> None:
        """Tell every process sharing the store."""
        ...


@runtime_checkable
class StateStore(Lifecycle, WriteBehind, HealthStore, FactsStore, Locks, Leases, RequestLogStore, Aggregates,
                 KeyStore, StoredResponses, Protocol):
    """The whole store the app is built on: what every backend offers."""
