"""credentials.json as the pool holds it: read at start, written back and re-read merged.

`CredentialsFile` keeps what a merge needs between writes — the file as last read or written (the
base of the three-way merges in writeback.py), its digest (to tell our own writes from someone
else's) and its shape (one object or an array) — and serialises the writes, across processes too
when the state store is shared. `reconcile` makes the in-memory credentials match merged entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    def __init__(self, path: Path | None, store: StateStore) -> None:
        self.path = path
        self.store = store
        self.credentials, self.single = load_credentials(path) if path else ([], False)
        if path:
            removed = remove_stale_temps(path)
            if removed:
                log.info("removed %d temp file(s) an interrupted write left beside %s", removed, path.name)
        found = writeback.read_file(path) if path else None
        self.base: list[dict[str, Any]] = [dict(c.raw) for c in self.credentials]
        self.digest = found.digest if found else None
        self.writing = asyncio.Lock()  # held by the caller around a snapshot, write and take-in

    async def write(self, ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Merge `ours` into the file as it is now and write it atomically; returns what was
        written. With a shared store, under a lock that holds across processes."""
        assert self.path is not None
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
        return merged

    async def reread(self, ours: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The file changed on disk: `ours` merged with it (a person's edit wins), or None when
        it is gone, half-written, or what we wrote ourselves."""
        assert self.path is not None
        found = await asyncio.to_thread(writeback.read_file, self.path)
        if found is None or found.digest == self.digest:
            return None
        merged = writeback.merge_lists(self.base, ours, found.entries, prefer_ours=False)
        self.base, self.digest = found.entries, found.digest
        self.single = found.single
        return merged


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
