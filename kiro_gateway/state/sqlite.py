"""The default state store: one SQLite file (`state.db` beside config.json), one gateway process.

Every call runs on one dedicated thread that owns the connection (sqlite3 objects stay on the thread
that made them, and a single writer never waits on itself), so the event loop never blocks on disk.
Write-behind batches arrive as one call and commit as one transaction. WAL mode keeps readers (admin
queries) from waiting on a commit. Locks and pacing counters live in memory (see local.py): a store
that one process owns needs nothing more. Session bindings are written behind and read back only at
a cold start (`SessionSnapshot`); being alone, it offers no `SessionStore`, `TokenStore` or `Events`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from .local import LocalCoordination
from .protocols import SessionSnapshot, StateStore
from .records import AGG_SIZE, BUCKET_SECONDS, HEALTH_COUNTS, HEALTH_FIELDS, KEY_USAGE_FIELDS, Batch, LogQuery, \
    add_vector, search_text

T = TypeVar("T")

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS health (cred TEXT PRIMARY KEY, success_count INTEGER NOT NULL DEFAULT 0,
  failure_count INTEGER NOT NULL DEFAULT 0, consecutive_failures INTEGER NOT NULL DEFAULT 0,
  refresh_failures INTEGER NOT NULL DEFAULT 0, last_used REAL NOT NULL DEFAULT 0,
  cooldown_until REAL NOT NULL DEFAULT 0, exhausted_until REAL NOT NULL DEFAULT 0,
  unhealthy_until REAL NOT NULL DEFAULT 0, reason TEXT);
CREATE TABLE IF NOT EXISTS sticky (session TEXT PRIMARY KEY, cred TEXT NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sticky_cred ON sticky (cred);
CREATE TABLE IF NOT EXISTS logs (id TEXT PRIMARY KEY, ts REAL NOT NULL, status INTEGER, model TEXT,
  kiro_model TEXT, credential TEXT, key TEXT, search TEXT, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_ts ON logs (ts);
CREATE TABLE IF NOT EXISTS agg (bucket INTEGER NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL, PRIMARY KEY (bucket, k));
CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS account_facts (cred TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS key_usage (key TEXT NOT NULL, day TEXT NOT NULL, v TEXT NOT NULL, PRIMARY KEY (key, day));
CREATE TABLE IF NOT EXISTS responses (id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS responses_expires ON responses (expires);
"""
_AGG_KEEP = 26 * 3600  # a day of buckets, and some slack for clocks and the trend's edges
_KEY_USAGE_KEEP_DAYS = 40


class SQLiteStore(LocalCoordination, StateStore, SessionSnapshot):
    kind = "sqlite"
    shared = False

    def __init__(self, path: str | Path) -> None:
        LocalCoordination.__init__(self)
        self.path = str(path)
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    # -- the thread --------------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("state store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def _conn(self) -> sqlite3.Connection:
        """The connection, on the store's thread (only code run through `_run` touches it)."""
        if self._db is None:
            raise RuntimeError("state store is not open")
        return self._db

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="kg-state")
            await self._run(self._connect)

    def _connect(self) -> None:
        if self.path != ":memory:":
            p = Path(self.path)
            p.parent.mkdir(parents=True, exist_ok=True)
            if not p.exists():  # tokens and keys' hashes live here: owner-only, like credentials.json
                os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process kill
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        self._db = db

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        db, self._db = self._db, None
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(executor, db.close)
        executor.shutdown(wait=False)

    # -- write-behind ------------------------------------------------------------------------------

    async def write(self, batch: Batch) -> None:
        if not batch.empty():
            await self._run(self._write, batch)

    def _write(self, b: Batch) -> None:
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            for cred, ch in b.health.items():
                db.execute("INSERT OR IGNORE INTO health (cred) VALUES (?)", (cred,))
                cols = [f"{k} = {k} + ?" for k in ch.incr] + [f"{k} = ?" for k in ch.set]
                if cols:
                    db.execute(f"UPDATE health SET {', '.join(cols)} WHERE cred = ?",
                               (*ch.incr.values(), *ch.set.values(), cred))
            if b.sticky:
                db.executemany("INSERT OR REPLACE INTO sticky (session, cred, expires) VALUES (?, ?, ?)",
                               [(s, c, e) for s, (c, e) in b.sticky.items()])
            for cred in b.sticky_dropped | b.forget:
                db.execute("DELETE FROM sticky WHERE cred = ?", (cred,))
            for cred in b.forget:
                db.execute("DELETE FROM health WHERE cred = ?", (cred,))
            if b.logs:
                db.executemany(
                    "INSERT OR REPLACE INTO logs (id, ts, status, model, kiro_model, credential, key, search, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(r["id"], r["time"], r.get("status"), r.get("model"), r.get("kiroModel"),
                      None if r.get("credential") is None else str(r["credential"]), r.get("key"),
                      search_text(r), orjson.dumps(r)) for r in b.logs])
            for (bucket, k), vec in b.aggregates.items():
                self._add(db, "agg", ("bucket", "k"), (bucket, k), vec, AGG_SIZE)
            for (key, day), vec in b.key_usage.items():
                self._add(db, "key_usage", ("key", "day"), (key, day), vec, len(KEY_USAGE_FIELDS))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @staticmethod
    def _add(db: sqlite3.Connection, table: str, cols: tuple[str, str], ids: tuple[Any, Any], vec: list[float],
             size: int) -> None:
        row = db.execute(f"SELECT v FROM {table} WHERE {cols[0]} = ? AND {cols[1]} = ?", ids).fetchone()
        cur = orjson.loads(row[0]) if row else [0.0] * size
        cur += [0.0] * (size - len(cur))
        add_vector(cur, vec)
        db.execute(f"INSERT OR REPLACE INTO {table} ({cols[0]}, {cols[1]}, v) VALUES (?, ?, ?)",
                   (*ids, orjson.dumps(cur)))

    # -- reads -------------------------------------------------------------------------------------

    async def load_health(self, cred_ids: list[str]) -> dict[str, dict[str, Any]]:
        return await self._run(self._load_health, list(cred_ids))

    def _load_health(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        cols = ("cred",) + HEALTH_COUNTS + HEALTH_FIELDS
        rows = self._conn.execute(f"SELECT {', '.join(cols)} FROM health").fetchall()
        wanted = set(ids)
        return {r[0]: dict(zip(cols[1:], r[1:], strict=True)) for r in rows if r[0] in wanted}

    async def load_sticky(self) -> list[tuple[str, str, float]]:
        rows = await self._run(lambda: self._conn.execute(
            "SELECT session, cred, expires FROM sticky WHERE expires > ?", (time.time(),)).fetchall())
        return [(str(s), str(c), float(e)) for s, c, e in rows]

    async def get_account_facts(self, cred_id: str) -> dict[str, Any] | None:
        def get() -> dict[str, Any] | None:
            row = self._conn.execute("SELECT data FROM account_facts WHERE cred = ?", (cred_id,)).fetchone()
            return _object(row[0]) if row else None

        return await self._run(get)

    async def put_account_facts(self, cred_id: str, facts: dict[str, Any]) -> None:
        await self._run(lambda: self._conn.execute(
            "INSERT OR REPLACE INTO account_facts (cred, data) VALUES (?, ?)", (cred_id, orjson.dumps(facts))))

    async def query_logs(self, q: LogQuery) -> tuple[list[dict[str, Any]], int]:
        return await self._run(self._query, q)

    def _query(self, q: LogQuery) -> tuple[list[dict[str, Any]], int]:
        where: list[str] = []
        args: list[Any] = []
        if q.since is not None:
            where.append("ts >= ?")
            args.append(q.since)
        if q.until is not None:
            where.append("ts <= ?")
            args.append(q.until)
        if (rng := q.status_range()) is not None:
            where.append("status BETWEEN ? AND ?")
            args += rng
        if q.model:
            where.append("(model = ? OR kiro_model = ?)")
            args += [q.model, q.model]
        if q.credential:
            where.append("credential = ?")
            args.append(q.credential)
        if q.key:
            where.append("key = ?")
            args.append(q.key)
        if q.text:
            where.append("search LIKE ? ESCAPE '\\'")
            esc = q.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(f"%{esc}%")
        sql_where = (" WHERE " + " AND ".join(where)) if where else ""
        db = self._conn
        total: int = db.execute(f"SELECT COUNT(*) FROM logs{sql_where}", args).fetchone()[0]
        rows = db.execute(f"SELECT data FROM logs{sql_where} ORDER BY ts DESC, rowid DESC LIMIT ? OFFSET ?",
                                [*args, q.limit, q.offset]).fetchall()
        return [_object(r[0]) for r in rows], total

    async def prune(self, max_count: int, max_age: float) -> None:
        await self._run(self._prune, max_count, max_age)

    def _prune(self, max_count: int, max_age: float) -> None:
        db, now = self._conn, time.time()
        if max_age > 0:
            db.execute("DELETE FROM logs WHERE ts < ?", (now - max_age,))
        if max_count > 0:
            db.execute("DELETE FROM logs WHERE rowid IN (SELECT rowid FROM logs ORDER BY ts DESC, rowid DESC "
                       "LIMIT -1 OFFSET ?)", (max_count,))
        db.execute("DELETE FROM agg WHERE bucket > 0 AND bucket < ?", (now - _AGG_KEEP,))
        db.execute("DELETE FROM sticky WHERE expires < ?", (now,))
        oldest = time.strftime("%Y-%m-%d", time.gmtime(now - _KEY_USAGE_KEEP_DAYS * 86400))
        db.execute("DELETE FROM key_usage WHERE day < ?", (oldest,))
        db.execute("DELETE FROM responses WHERE expires < ?", (now,))

    async def aggregates(self, since: float) -> dict[tuple[int, str], list[float]]:
        start = int(since) // BUCKET_SECONDS * BUCKET_SECONDS
        rows = await self._run(lambda: self._conn.execute(
            "SELECT bucket, k, v FROM agg WHERE bucket >= ?", (max(start, 1),)).fetchall())
        return {(b, k): orjson.loads(v) for b, k, v in rows}

    async def totals(self) -> dict[str, list[float]]:
        rows = await self._run(lambda: self._conn.execute("SELECT k, v FROM agg WHERE bucket = 0").fetchall())
        return {k: orjson.loads(v) for k, v in rows}

    # -- keys ----------------------------------------------------------------------------------------

    async def list_keys(self) -> list[dict[str, Any]]:
        rows = await self._run(lambda: self._conn.execute("SELECT data FROM keys").fetchall())
        return [_object(r[0]) for r in rows]

    async def save_key(self, key: dict[str, Any]) -> None:
        await self._run(lambda: self._conn.execute("INSERT OR REPLACE INTO keys (id, data) VALUES (?, ?)",
                                                 (key["id"], orjson.dumps(key))))

    async def delete_key(self, key_id: str) -> bool:
        cur = await self._run(lambda: self._conn.execute("DELETE FROM keys WHERE id = ?", (key_id,)))
        return bool(cur.rowcount > 0)

    async def put_response(self, response_id: str, owner: str, data: bytes, expires: float) -> None:
        await self._run(lambda: self._conn.execute(
            "INSERT OR REPLACE INTO responses (id, owner, expires, data) VALUES (?, ?, ?, ?)",
            (response_id, owner, expires, data)))

    async def get_response(self, response_id: str) -> tuple[str, bytes] | None:
        row = await self._run(lambda: self._conn.execute(
            "SELECT owner, data FROM responses WHERE id = ? AND expires >= ?", (response_id, time.time())).fetchone())
        return None if row is None else (row[0], bytes(row[1]))

    async def delete_response(self, response_id: str) -> bool:
        cur = await self._run(lambda: self._conn.execute("DELETE FROM responses WHERE id = ?", (response_id,)))
        return bool(cur.rowcount > 0)

    async def touch_responses(self, response_ids: list[str], expires: float) -> None:
        if response_ids:
            await self._run(lambda: self._conn.executemany(
                "UPDATE responses SET expires = max(expires, ?) WHERE id = ?", [(expires, r) for r in response_ids]))

    async def key_usage(self, day: str) -> dict[str, list[float]]:
        rows = await self._run(lambda: self._conn.execute("SELECT key, v FROM key_usage WHERE day = ?",
                                                        (day,)).fetchall())
        return {k: orjson.loads(v) for k, v in rows}


def _object(raw: bytes | str) -> dict[str, Any]:
    """A stored JSON object (every row this store writes holds one)."""
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise TypeError("state.db holds a record that is not an object")
    return value
