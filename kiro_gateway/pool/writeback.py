"""credentials.json as several writers see it: gateway processes, and a person editing it by hand.

Every writer merges instead of overwriting. A three-way merge per credential, against the file as
this gateway last read or wrote it (the base): a field only one side changed takes that side's
value; a field both changed goes to the gateway when it saves (it is writing a change it just made:
disabled, priority…) and to the file when it reloads (a person's edit wins). Credentials added on
one side are kept; removed on one side (present in the base) are dropped.

Tokens move as a group and by their own rule. When the file's tokens are exactly the base's (no one
touched them since this gateway last read or wrote the file), ours are kept whatever they look like:
a refresh that rotated the refresh token of a credential in its minimal form (`refreshToken` +
`authMethod`, no expiry) is our change, not a person's new login. Otherwise the version whose token
expires later is newer (a refresh always moves `expiresAt` forward), so a stale copy — an editor
saving a buffer opened before a refresh, a slow process — never rolls tokens back. One exception: a
person who pastes a new refresh token without an access token or expiry (a new login) replaced the
credential.

Credentials are matched by id: their `id` field, else their 1-based position (as `Credential.id`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..util.files import remove_stale_temps, write_atomic
from .credential import TOKEN_KEYS, Credential

__all__ = ["TOKEN_KEYS", "merge_entry", "merge_lists", "merge_and_write", "read_file", "FileCredentials", "entry_id"]


_NEWER_BY = 0.001  # refreshes write milliseconds: any real difference decides
_MISSING: Any = object()


def entry_id(raw: dict[str, Any], index: int) -> str:
    return Credential(raw, index).id


def _expiry(raw: dict[str, Any]) -> float:
    return Credential(raw, 0).expires_at or 0.0


def _tokens(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: raw[k] for k in TOKEN_KEYS if k in raw}


def _new_login(theirs: dict[str, Any], ours: dict[str, Any]) -> bool:
    t, o = Credential(theirs, 0), Credential(ours, 0)
    return bool(t.refresh_token and t.refresh_token != o.refresh_token and not (t.access_token and t.expires_at))


def _token_side(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any], prefer_ours: bool) -> dict[str, Any]:
    o, t, b = _tokens(ours), _tokens(theirs), _tokens(base)
    if o == t or t == b:
        return o  # the same, or the file's are the ones we last saw there: ours are the change
    if _new_login(theirs, ours):
        return t
    eo, et = _expiry(ours), _expiry(theirs)
    if eo > et + _NEWER_BY:
        return o
    if et > eo + _NEWER_BY:
        return t
    if o == b:
        return t
    if t == b:
        return o
    return o if prefer_ours else t


def merge_entry(base: dict[str, Any] | None, ours: dict[str, Any], theirs: dict[str, Any],
                prefer_ours: bool) -> dict[str, Any]:
    """One credential, three versions: see the module's rules."""
    base = base or {}
    out: dict[str, Any] = {}
    for k in [*theirs, *(k for k in ours if k not in theirs)]:
        if k in TOKEN_KEYS:
            continue
        b, o, t = base.get(k, _MISSING), ours.get(k, _MISSING), theirs.get(k, _MISSING)
        if o == t or t == b:
            v = o
        elif o == b:
            v = t
        else:
            v = o if prefer_ours else t
        if v is not _MISSING:
            out[k] = v
    out.update(_token_side(base, ours, theirs, prefer_ours))
    return out


def merge_lists(base: list[dict[str, Any]], ours: list[dict[str, Any]], theirs: list[dict[str, Any]],
                prefer_ours: bool) -> list[dict[str, Any]]:
    """Whole files: credentials in the file's order, then those only we have."""
    b = {entry_id(r, i): r for i, r in enumerate(base)}
    o = {entry_id(r, i): r for i, r in enumerate(ours)}
    merged: list[dict[str, Any]] = []
    for i, t in enumerate(theirs):
        cid = entry_id(t, i)
        if cid in o:
            merged.append(merge_entry(b.get(cid), o[cid], t, prefer_ours))
        elif cid not in b:
            merged.append(dict(t))  # added by the other side
        # else: we removed it
    seen = {entry_id(t, i) for i, t in enumerate(theirs)}
    for cid, r in o.items():
        if cid not in seen and cid not in b:
            merged.append(dict(r))  # added by us (in the base but gone from the file: removed there)
    return merged


@dataclass(slots=True)
class FileCredentials:
    """What a read of the file found: its entries, its shape, and a digest of its bytes."""

    entries: list[dict[str, Any]]
    single: bool
    digest: str


def read_file(path: Path) -> FileCredentials | None:
    """The file's credentials, or None when it is missing or not a credentials file (yet)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(data).hexdigest()
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None  # half-typed by an editor: wait for the next save
    if isinstance(parsed, dict):
        return FileCredentials([parsed], True, digest)
    if isinstance(parsed, list):
        return FileCredentials([d for d in parsed if isinstance(d, dict)], False, digest)
    return None


def merge_and_write(path: Path, base: list[dict[str, Any]], ours: list[dict[str, Any]], single: bool
                    ) -> tuple[list[dict[str, Any]], str]:
    """Re-read the file, merge ours into it, write it atomically (0600): (what was written, its digest).
    Runs in a thread, under the write-back lock (across processes in team mode)."""
    current = read_file(path)
    merged = merge_lists(base, ours, current.entries if current else [], prefer_ours=True) if current else \
        [dict(r) for r in ours]
    value: Any = merged[0] if single and len(merged) == 1 else merged
    data = orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"
    write_atomic(path, data)
    remove_stale_temps(path)
    return merged, hashlib.sha256(data).hexdigest()
