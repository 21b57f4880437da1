"""Keeps the pool's in-memory health and stickiness in step with the state store.

The pool reads only memory (selection is on the hot path). Every change marks the credential dirty;
the state writer then asks this source for the difference since the last write — counts as
increments, other fields as values — so several processes can add to one credential's counts.
With a shared store (Redis) it reloads what other processes wrote when they announce it, and all
of it every few seconds in case a notice was lost; changes made here but not yet written stay on
top of what is loaded, so a reload never undoes a fresh cooldown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..state.base import HEALTH_COUNTS, HEALTH_FIELDS, Batch, HealthChange, SessionSnapshot, SessionStore, \
    StateStore, StoreError
from .health import Health
from .selection import Sticky

log = logging.getLogger("kiro_gateway.pool.sync")

__all__ = ["PoolSync"]

_ALL = HEALTH_COUNTS + HEALTH_FIELDS
_FULL_RELOAD = 5.0  # seconds between full reloads from a shared store


def _values(h: Health) -> tuple[Any, ...]:
    return tuple(getattr(h, f) for f in _ALL)


class PoolSync:
    """Works on the pool's health map and session bindings, given at construction (the same
    objects the pool selects from). Another process's token refresh is announced to `adopt(id)`,
    called from the writer's loop."""

    def __init__(self, store: StateStore, health: dict[str, Health], sticky: Sticky,
                 adopt: Callable[[str], Awaitable[None]]) -> None:
        self.store = store
        # The store's kind, asked once: a runtime-checkable Protocol's isinstance walks its members,
        # and lookup/bind run on every request.
        self.sessions: SessionStore | None = store if isinstance(store, SessionStore) else None
        self.health = health
        self.bindings = sticky
        self.adopt = adopt
        self.dirty: set[str] = set()
        self.written: dict[str, tuple[Any, ...]] = {}  # health as last written or loaded
        self._collected: dict[str, tuple[Any, ...]] = {}
        self.sticky: dict[str, tuple[str, float]] = {}
        self.sticky_dropped: set[str] = set()
        self.forgotten: set[str] = set()
        self.reload_ids: set[str] = set()
        self.token_ids: set[str] = set()
        self._full_at = 0.0
        self.wake: Callable[[], None] = lambda: None  # the writer's wake-up, once attached

    # -- marks from the pool (cheap: the request path calls them) --------------------------------------

    def touch(self, cid: str, urgent: bool = False) -> None:
        self.dirty.add(cid)
        if urgent:
            self.wake()

    def stick(self, session: str, cid: str, expires: float) -> None:
        self.sticky[session] = (cid, expires)

    def drop_sticky(self, cid: str) -> None:
        self.sticky_dropped.add(cid)
        self.sticky = {k: v for k, v in self.sticky.items() if v[0] != cid}

    # -- sessions (a shared store: another process may have bound one) --------------------------------

    async def lookup(self, session: str) -> None:
        """A session this process has no binding for: take the store's, if any."""
        store = self.sessions
        if store is None or self.bindings.get(session) is not None:
            return
        try:
            hit = await store.sticky_get(session)
        except StoreError:
            return
        if hit is not None and hit[0] in self.health:
            self.bindings.restore(session, hit[0], hit[1])

    async def bind(self, session: str, cid: str) -> None:
        """A request of `session` is served by `cid`: bound here, and in the store."""
        before = self.bindings.put(session, cid)
        expires = self.bindings.expires(session)
        if not expires:
            return
        store = self.sessions
        if store is not None and before != cid:
            # A new binding: written now, so the next request finds it on any process.
            try:
                await store.sticky_put(session, cid, expires)
                return
            except StoreError:
                pass
        self.stick(session, cid, expires)

    def forget(self, cid: str) -> None:
        self.forgotten.add(cid)
        self.dirty.discard(cid)
        self.written.pop(cid, None)

    # -- the writer's source protocol ------------------------------------------------------------------

    def collect(self, batch: Batch) -> None:
        health = self.health
        for cid in self.dirty:
            h = health.get(cid)
            if h is None:
                continue
            now = _values(h)
            before = self.written.get(cid) or _values(Health())
            change = HealthChange()
            for i, f in enumerate(_ALL):
                if now[i] == before[i]:
                    continue
                if f in HEALTH_COUNTS:
                    change.incr[f] = now[i] - before[i]
                else:
                    change.set[f] = now[i]
            if change.incr or change.set:
                batch.health[cid] = change
                self._collected[cid] = now
        self.dirty = set()
        batch.sticky.update(self.sticky)
        self.sticky = {}
        batch.sticky_dropped |= self.sticky_dropped
        self.sticky_dropped = set()
        batch.forget |= self.forgotten
        self.forgotten = set()

    def done(self, batch: Batch, ok: bool) -> None:
        collected, self._collected = self._collected, {}
        if ok:
            self.written.update(collected)
            return
        self.dirty |= set(collected)  # the difference is computed again next time
        for k, v in batch.sticky.items():
            self.sticky.setdefault(k, v)
        self.sticky_dropped |= batch.sticky_dropped
        self.forgotten |= batch.forget

    async def after(self) -> None:
        if not self.store.shared:
            return
        now = time.monotonic()
        if now - self._full_at > _FULL_RELOAD:
            self._full_at = now
            self.reload_ids |= set(self.health)
        if self.reload_ids:
            ids, self.reload_ids = self.reload_ids, set()
            await self.reload(sorted(ids))
        if self.token_ids:
            ids, self.token_ids = self.token_ids, set()
            for cid in ids:
                await self.adopt(cid)

    # -- loading ---------------------------------------------------------------------------------------

    async def load(self) -> None:
        """Start-up: health and (for a one-process store) the session bindings."""
        await self.reload(list(self.health))
        now = time.time()
        bindings = await self.store.load_sticky() if isinstance(self.store, SessionSnapshot) else []
        for session, cid, expires in bindings:
            if expires > now and cid in self.health:
                self.bindings.restore(session, cid, expires)

    async def reload(self, ids: list[str]) -> None:
        stored = await self.store.load_health(ids)
        for cid, row in stored.items():
            h = self.health.get(cid)
            if h is not None:
                self._merge(cid, h, row)

    def _merge(self, cid: str, h: Health, row: dict[str, Any]) -> None:
        """Stored values, with this process's unwritten changes kept on top."""
        base = self.written.get(cid) or _values(Health())
        mine = _values(h)
        new: list[Any] = []
        for i, f in enumerate(_ALL):
            stored = row.get(f, base[i])
            if f in HEALTH_COUNTS:
                new.append(stored + (mine[i] - base[i]))  # plus increments not yet written
            elif mine[i] != base[i]:
                new.append(mine[i])  # changed here since the last write: ours until written
            else:
                new.append(stored)
        was_active = h.status(False) == "active"
        for i, f in enumerate(_ALL):
            setattr(h, f, new[i])
        self.written[cid] = tuple(row.get(f, base[i]) for i, f in enumerate(_ALL))
        if was_active and h.status(False) != "active":
            self.bindings.drop(cid)

    # -- notices from other processes --------------------------------------------------------------------

    def on_event(self, topic: str, data: Any) -> None:
        if topic == "health" and isinstance(data, list):
            self.reload_ids |= {str(x) for x in data if str(x) in self.health}
            self.wake()
        elif topic == "tokens" and data is not None:
            self.token_ids.add(str(data))
            self.wake()
        elif topic == "resync":
            self._full_at = 0.0
            self.wake()
