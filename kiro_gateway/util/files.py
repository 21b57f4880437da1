"""Crash-safe file writes: a reader sees the old file or the new one, never a torn one."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

__all__ = ["write_atomic", "write_json_atomic", "read_json", "remove_stale_temps"]

# A temp file is locked (flock) by its writer from its first microsecond until the rename; one that
# can be locked and is older than this has no writer left: a process killed mid-write left it.
_UNLOCKED_GRACE = 0.1


def write_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o600) -> None:
    """Write to a temp file in the same directory, fsync it, rename over the target, fsync the dir."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # tells `remove_stale_temps` a writer is alive
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.close(fd)
    try:
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete the temp files `write_atomic` left beside `path` when its process was killed mid-write
    (they may hold secrets). A temp file whose writer is alive — this process or another — is locked
    and kept. Returns how many were removed."""
    target = Path(path)
    removed, now = 0, time.time()
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return 0
    prefix = f".{target.name}."
    for p in entries:
        if not (p.name.startswith(prefix) and p.name.endswith(".tmp")):
            continue
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue  # gone meanwhile (renamed into place), or not ours to open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if now - os.fstat(fd).st_mtime >= _UNLOCKED_GRACE:
                os.unlink(p)
                removed += 1
        except OSError:
            pass  # locked: a write in progress
        finally:
            os.close(fd)
    return removed


def write_json_atomic(path: str | os.PathLike, value: Any, mode: int = 0o600) -> None:
    write_atomic(path, orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n", mode)


def read_json(path: str | os.PathLike) -> Any:
    with open(path, "rb") as f:
        return orjson.loads(f.read())
