"""The state store: SQLite by default (state.db beside config.json), Redis for team mode."""

from __future__ import annotations

from pathlib import Path

from .base import Batch, LockTimeout, LogQuery, StateStore, StoreError
from .url import StateUrl, parse_state_url

__all__ = ["make_store", "StateStore", "Batch", "LogQuery", "LockTimeout", "StoreError", "STATE_FILE",
           "StateUrl", "parse_state_url"]

STATE_FILE = "state.db"


def make_store(url: str | None, data_dir: Path | None, namespace: str = "kiro-gateway") -> StateStore:
    """The store `stateUrl` names; none means `state.db` in the data dir (memory without one)."""
    where = parse_state_url(url)
    if where.backend == "redis":
        from .redis import RedisStore

        return RedisStore(where.url, namespace)
    from .sqlite import SQLiteStore

    if where.backend == "sqlite" and where.path is not None:
        return SQLiteStore(where.path)
    if where.backend == "default" and data_dir is not None:
        return SQLiteStore(data_dir / STATE_FILE)
    return SQLiteStore(":memory:")
