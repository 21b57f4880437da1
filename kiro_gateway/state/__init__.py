"""The state store: SQLite by default (state.db beside config.json), Redis for team mode."""

from __future__ import annotations

from pathlib import Path

from .base import Batch, LockTimeout, LogQuery, StateStore, StoreError

__all__ = ["make_store", "StateStore", "Batch", "LogQuery", "LockTimeout", "StoreError", "STATE_FILE"]

STATE_FILE = "state.db"


def make_store(url: str | None, data_dir: Path | None, namespace: str = "kiro-gateway") -> StateStore:
    """The store `stateUrl` names; none means `state.db` in the data dir (memory without one)."""
    url = (url or "").strip()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore

        return RedisStore(url, namespace)
    from .sqlite import SQLiteStore

    if url in ("memory", "memory://", ":memory:"):
        return SQLiteStore(":memory:")
    if url.startswith("sqlite:///"):
        return SQLiteStore(Path(url[len("sqlite:///"):]).expanduser())
    if url:
        raise ValueError(f"stateUrl must be redis://…, sqlite:///path or memory (got {url.split(':', 1)[0]}:…)")
    return SQLiteStore(data_dir / STATE_FILE if data_dir is not None else ":memory:")
