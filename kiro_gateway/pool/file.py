"""credentials.json as the pool holds it: read at start, written back and re-read merged.

`CredentialsFile` holds the credentials in memory and what a merge needs between writes — the file
as last read or written (the base of the three-way merges in writeback.py), its digest (to tell
our own writes from someone else's) and its shape (one object or an array). It serialises the
writes, across processes too when the state store is shared, and after each write or re-read makes
memory match the merged entries (`reconcile`), telling its owner which credentials joined or went.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..core.conversation import GatewayError
from ..state.base import LockTimeout, StateStore, StoreError
from ..util.files import read_json, remove_stale_temps
from . import writeback
from .credential import Credential

log = logging.getLogger("kiro_gateway.pool")

__all__ = ["CredentialsFile", "Reconciled", "load_credentials", "reconcile"]

_FILE_LOCK_TTL = 30.0


def load_credentials(path: Path) -> tuple[list[Credential], bool]:
    """(credentials, single_object_shape). A missing file is an empty pool."""
    if not path.exists():
        return [], False
    try:
        data = read_json(path)
    except (OSError, orjson.JSONDecodeError) as e:
        raise GatewayError("internal", f"{path}: cannot read credentials ({e})") from e
    if isinstance(data, dict):
        return [Credential(data, 0)], True
    if isinstance(data, list):
        return [Credential(d, i) for i, d in enumerate(data) if isinstance(d, dict)], False
    raise GatewayError("internal", f"{path}: credentials must be an object or an array")


class CredentialsFile:
    def __init__(self, path: Path | None, store: StateStore, joined: Callable[[str], None],
                 gone: Callable[[str], None]) -> None:
        """`joined(id)` is told of a credential that appeared in the file (before it is in
        `credentials`), `gone(id)` of one removed there."""
        self.path = path
        self.store = store
        self._joined, self._gone = joined, gone
        self.credentials, self.single = load_credentials(path) if path else ([], False)
        if path:
            removed = remove_stale_temps(path)
            if removed:
                log.info("removed %d temp file(s) an interrupted write left beside %s", removed, path.name)
        found = writeback.read_file(path) if path else None
        self.base: list[dict[str, Any]] = [dict(c.raw) for c in self.credentials]
        self.digest = found.digest if found else None
        self._writing = asyncio.Lock()

    def _entries(self) -> list[dict[str, Any]]:
        return [dict(c.raw) for c in self.credentials]

    async def save(self) -> None:
        """Write back: re-read the file, merge ours into it (writeback.py), write atomically — under
        a lock that, with a shared store, holds across processes so no write-back is lost to a race."""
        if not self.path:
            return
        async with self._writing:
            ours = self._entries()
            args = (self.path, self.base, ours, self.single)
            lock: AbstractAsyncContextManager[None] = \
                self.store.lock("credentials-file", _FILE_LOCK_TTL, _FILE_LOCK_TTL) if self.store.shared \
                else contextlib.nullcontext()
            try:
                async with lock:
                    merged, digest = await asyncio.to_thread(writeback.merge_and_write, *args)
            except (LockTimeout, StoreError) as e:
                log.warning("credentials write-back without the shared lock (%s)", type(e).__name__)
                merged, digest = await asyncio.to_thread(writeback.merge_and_write, *args)
            self.base, self.digest = merged, digest
            self._take_in(ours, merged)

    async def reload(self) -> bool:
        """The file changed on disk (by hand or by another process): take it in. A person's edits
        win; tokens refreshed here since are kept (newer `expiresAt`). Returns whether it changed."""
        if not self.path:
            return False
        ours = self._entries()
        found = await asyncio.to_thread(writeback.read_file, self.path)
        if found is None or found.digest == self.digest:
            return False  # gone, half-written, or what we wrote ourselves
        merged = writeback.merge_lists(self.base, ours, found.entries, prefer_ours=False)
        self.base, self.digest = found.entries, found.digest
        self.single = found.single
        self._take_in(ours, merged)
        log.info("credentials reloaded from %s: %d credential(s)", self.path.name, len(self.credentials))
        if merged != found.entries:
            await self.save()  # tokens refreshed here meanwhile go back into the file
        return True

    def _take_in(self, snapshot: list[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
        found = reconcile(self.credentials, snapshot, entries, self.path)
        for cid in found.added:
            self._joined(cid)
        for cid in found.removed:
            self._gone(cid)
        self.credentials = found.credentials


@dataclass(slots=True)
class Reconciled:
    credentials: list[Credential]
    added: list[str] = field(default_factory=list)  # ids new in memory
    removed: list[str] = field(default_factory=list)  # ids the file no longer has


def reconcile(current: list[Credential], snapshot: list[dict[str, Any]], entries: list[dict[str, Any]],
              where: object) -> Reconciled:
    """The credentials that match merged `entries`. Credentials changed or added since `snapshot`
    was taken (a refresh finished while the file was being written) keep those changes; the
    objects of credentials that stay are kept (leases keep pointing at them)."""
    snap = {writeback.entry_id(r, i): r for i, r in enumerate(snapshot)}
    by_id = {c.id: c for c in current}
    out = Reconciled([])
    for i, entry in enumerate(entries):
        cid = writeback.entry_id(entry, i)
        if any(c.id == cid for c in out.credentials):
            log.warning("%s: two credentials with id %s; the second is ignored", where, cid)
            continue
        cred = by_id.get(cid)
        if cred is None:
            cred = Credential(dict(entry), i)
            out.added.append(cid)
        else:
            if cid in snap and cred.raw != snap[cid]:
                entry = writeback.merge_entry(snap[cid], cred.raw, entry, prefer_ours=True)
            cred.replace(entry, i)
        out.credentials.append(cred)
    kept = {c.id for c in out.credentials}
    for cid, cred in by_id.items():
        if cid in kept:
            continue
        if cid in snap:
            out.removed.append(cid)  # removed in the file
        else:
            cred.index = len(out.credentials)  # added while the file was written: its own save follows
            out.credentials.append(cred)
    return out
