"""Team mode: the state store on Redis (`stateUrl: "redis://…"`), shared by any number of gateways.

Counts are added with HINCRBY so processes never overwrite each other's; cooldowns and other values
are set. After each write-behind batch the writer publishes which credentials changed, and every
process reloads those (pub/sub on `<namespace>:events`). Locks are SET NX PX with a random token,
released only by their holder (Lua). Pacing slots and rate windows are sorted sets scored with
Redis's own clock (TIME inside Lua), so gateways on hosts with skewed clocks still agree.

Being shared, it offers what a one-process store does not: `SessionStore` (bindings read and written
through), `TokenStore` and `Events` (protocols.py). Bindings are not copied at start-up (no
`SessionSnapshot`): each is read when its session next asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..util.ids import jitter
from .protocols import EventHandler, Events, SessionStore, StateStore, TokenStore
from .records import AGG_SIZE, BUCKET_SECONDS, HEALTH_COUNTS, HEALTH_FIELDS, KEY_USAGE_FIELDS, Batch, LockTimeout, \
    LogQuery, StoreError

log = logging.getLogger("kiro_gateway.state.redis")

__all__ = ["RedisStore", "safe_url"]

P = ParamSpec("P")
T = TypeVar("T")

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
  return 1
end
return 0
"""
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[1]), ARGV[i + 1])
end
return 1
"""
_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cap, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < cap then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""
_START = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local gap = tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(start + gap), 'PX', math.ceil((start - now + gap) * 1000) + 1000)
return tostring(start - now)
"""
_FSEP = "\x1e"  # between an aggregate's label key and the vector index in a hash field
_AGG_TTL = 26 * 3600
_KEY_USAGE_TTL = 40 * 86400
_MAX_CONNECTIONS = 64
_ROUTINE = {"last_used", "consecutive_failures"}
_FLOATS = {"last_used", "cooldown_until", "exhausted_until", "unhealthy_until"}


def _unavailable(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Redis errors become StoreError, so callers in the request path can fall back."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except RedisError as e:
            raise StoreError(f"redis: {type(e).__name__}") from None

    return wrapper


class RedisStore(StateStore, SessionStore, TokenStore, Events):
    kind = "redis"
    shared = True

    def __init__(self, url: str, namespace: str = "kiro-gateway") -> None:
        self.url = url
        self.ns = namespace
        # A bounded pool that makes callers wait for a connection rather than fail under a burst.
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=_MAX_CONNECTIONS, timeout=10,
                                                        decode_responses=True, health_check_interval=30)
        self.r = aioredis.Redis(connection_pool=pool)
        self._release = self.r.register_script(_RELEASE)
        self._slot = self.r.register_script(_SLOT)
        self._renew = self.r.register_script(_RENEW)
        self._rate = self.r.register_script(_RATE)
        self._start = self.r.register_script(_START)
        self._callbacks: list[EventHandler] = []
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._bg: set[asyncio.Task[None]] = set()

    def _k(self, *parts: str) -> str:
        return ":".join((self.ns, *parts))

    # -- lifecycle and pub/sub ----------------------------------------------------------------------

    async def open(self) -> None:
        try:
            await self.r.ping()
        except RedisError as e:
            raise StoreError(f"cannot reach {safe_url(self.url)}: {type(e).__name__}") from None
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="kg-state-events")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), 5)  # subscribed before the first request

    async def close(self) -> None:
        task, self._listener = self._listener, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for t in list(self._bg):
            with contextlib.suppress(Exception):
                await t
        await self.r.aclose()

    def subscribe(self, callback: EventHandler) -> None:
        self._callbacks.append(callback)

    async def publish(self, topic: str, data: Any = None) -> None:
        with contextlib.suppress(RedisError):  # a lost notice is caught up by the periodic reload
            await self.r.publish(self._k("events"), orjson.dumps({"t": topic, "d": data}))

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            pubsub = self.r.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._k("events"))
                self._ready.set()
                delay = 0.2
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    try:
                        event = orjson.loads(msg["data"])
                    except orjson.JSONDecodeError:
                        continue
                    for cb in self._callbacks:
                        try:
                            cb(event.get("t"), event.get("d"))
                        except Exception:  # noqa: BLE001 - one bad handler must not stop the others
                            log.exception("state event handler failed")
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except (RedisError, OSError) as e:
                (log.warning if delay == 0.2 else log.debug)("state events: %s; resubscribing", type(e).__name__)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                self._ready.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                for cb in self._callbacks:  # anything may have been missed: reload it all
                    with contextlib.suppress(Exception):
                        cb("resync", None)

    # -- write-behind -------------------------------------------------------------------------------

    @_unavailable
    async def write(self, b: Batch) -> None:
        if b.empty():
            return
        now = time.time()
        async with self.r.pipeline(transaction=False) as p:
            for cred, ch in b.health.items():
                key = self._k("health", cred)
                for f, n in ch.incr.items():
                    p.hincrby(key, f, int(n))
                if ch.set:
                    p.hset(key, mapping={f: ("" if v is None else v) for f, v in ch.set.items()})
            for session, (cred, expires) in b.sticky.items():
                ms = int((expires - now) * 1000)
                if ms > 0:
                    p.set(self._k("sticky", session), cred, px=ms)
            for cred in b.forget:
                p.delete(self._k("health", cred), self._k("tokens", cred))
            for row in b.logs:
                p.zadd(self._k("logs"), {orjson.dumps(row).decode(): row["time"]})
            buckets: set[int] = set()
            for (bucket, k), vec in b.aggregates.items():
                key = self._k("agg", str(bucket))
                buckets.add(bucket)
                for i, v in enumerate(vec):
                    if v:
                        p.hincrbyfloat(key, f"{k}{_FSEP}{i}", v)
            for bucket in buckets - {0}:
                p.expire(self._k("agg", str(bucket)), _AGG_TTL)
            days: set[str] = set()
            for (key_id, day), vec in b.key_usage.items():
                days.add(day)
                for i, v in enumerate(vec):
                    if v:
                        p.hincrbyfloat(self._k("keyuse", day), f"{key_id}{_FSEP}{i}", v)
            for day in days:
                p.expire(self._k("keyuse", day), _KEY_USAGE_TTL)
            await p.execute()
        # Announce state changes (cooldowns, penalties) at once; counts and last-used times travel
        # with every process's periodic reload, so steady traffic does not flood the channel.
        changed = sorted({cid for cid, ch in b.health.items() if set(ch.set) - _ROUTINE} | b.forget)
        if changed:
            await self.publish("health", changed)

    # -- credential state ---------------------------------------------------------------------------

    @_unavailable
    async def load_health(self, cred_ids: list[str]) -> dict[str, dict[str, Any]]:
        ids = list(cred_ids)
        async with self.r.pipeline(transaction=False) as p:
            for cid in ids:
                p.hgetall(self._k("health", cid))
            rows = await p.execute()
        out: dict[str, dict[str, Any]] = {}
        for cid, row in zip(ids, rows, strict=True):
            if row:
                out[cid] = _health_row(_text_map(row))
        return out

    @_unavailable
    async def sticky_get(self, session: str) -> tuple[str, float] | None:
        async with self.r.pipeline(transaction=False) as p:
            key = self._k("sticky", session)
            p.get(key)
            p.pttl(key)
            cred, ttl = await p.execute()
        if not cred or ttl is None or ttl <= 0:
            return None
        return cred, time.time() + ttl / 1000

    @_unavailable
    async def sticky_put(self, session: str, cred_id: str, expires: float) -> None:
        ms = int((expires - time.time()) * 1000)
        if ms > 0:
            await self.r.set(self._k("sticky", session), cred_id, px=ms)

    # -- learned account facts ----------------------------------------------------------------------

    @_unavailable
    async def get_account_facts(self, cred_id: str) -> dict[str, Any] | None:
        raw = await self.r.get(self._k("facts", cred_id))
        return orjson.loads(raw) if raw else None

    @_unavailable
    async def put_account_facts(self, cred_id: str, facts: dict[str, Any]) -> None:
        await self.r.set(self._k("facts", cred_id), orjson.dumps(facts))

    # -- refresh coordination -----------------------------------------------------------------------

    @_unavailable
    async def get_tokens(self, cred_id: str) -> dict[str, Any] | None:
        row = await self.r.hgetall(self._k("tokens", cred_id))
        return _text_map(row) or None

    @_unavailable
    async def put_tokens(self, cred_id: str, tokens: dict[str, Any]) -> None:
        await self.r.hset(self._k("tokens", cred_id), mapping={k: str(v) for k, v in tokens.items() if v is not None})
        await self.publish("tokens", cred_id)

    @asynccontextmanager
    async def _lock(self, name: str, ttl: float, wait: float) -> AsyncIterator[None]:
        key, token = self._k("lock", name), secrets.token_hex(12)
        deadline = time.monotonic() + wait
        try:
            while not await self.r.set(key, token, nx=True, px=max(1, int(ttl * 1000))):
                if time.monotonic() >= deadline:
                    raise LockTimeout(name)
                await asyncio.sleep(jitter(0.015, 0.045))  # jittered: waiters do not poll in step
        except RedisError as e:
            raise StoreError(f"redis: {type(e).__name__}: {e}") from None
        try:
            yield
        finally:
            with contextlib.suppress(RedisError):  # unreleased, it expires after ttl
                await self._release(keys=[key], args=[token])

    def lock(self, name: str, ttl: float, wait: float) -> AbstractAsyncContextManager[None]:
        return self._lock(name, ttl, wait)

    # -- pacing ---------------------------------------------------------------------------------------

    @_unavailable
    async def acquire_slot(self, scope: str, lease: str, cap: int, ttl: float) -> bool:
        return bool(await self._slot(keys=[self._k("slots", scope)], args=[lease, cap, ttl]))

    def release_slot(self, scope: str, lease: str) -> None:
        task = asyncio.get_running_loop().create_task(self._zrem(self._k("slots", scope), lease))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _zrem(self, key: str, member: str) -> None:
        with contextlib.suppress(RedisError):  # unreleased, the slot expires when no longer renewed
            await self.r.zrem(key, member)

    @_unavailable
    async def renew_slots(self, slots: list[tuple[str, str]], ttl: float) -> None:
        if slots:
            await self._renew(keys=[self._k("slots", s) for s, _ in slots], args=[ttl, *(lease for _, lease in slots)])

    @_unavailable
    async def take_rate(self, scope: str, cap: int, window: float) -> float:
        wait = await self._rate(keys=[self._k("rate", scope)], args=[cap, window, secrets.token_hex(8)])
        return float(wait)

    @_unavailable
    async def reserve_start(self, scope: str, gap: float) -> float:
        return float(await self._start(keys=[self._k("start", scope)], args=[gap]))

    # -- request log, aggregates ------------------------------------------------------------------------

    @_unavailable
    async def query_logs(self, q: LogQuery) -> tuple[list[dict[str, Any]], int]:
        hi = "+inf" if q.until is None else q.until
        lo = "-inf" if q.since is None else q.since
        raw = await self.r.zrevrangebyscore(self._k("logs"), hi, lo)
        rows = [r for r in (_object(x) for x in raw) if q.matches(r)]
        return rows[q.offset:q.offset + q.limit], len(rows)

    @_unavailable
    async def prune(self, max_count: int, max_age: float) -> None:
        key = self._k("logs")
        if max_age > 0:
            await self.r.zremrangebyscore(key, "-inf", time.time() - max_age)
        if max_count > 0:
            await self.r.zremrangebyrank(key, 0, -(max_count + 1))

    @_unavailable
    async def aggregates(self, since: float) -> dict[tuple[int, str], list[float]]:
        start = max(BUCKET_SECONDS, int(since) // BUCKET_SECONDS * BUCKET_SECONDS)
        buckets = list(range(start, int(time.time()) + 1, BUCKET_SECONDS))
        async with self.r.pipeline(transaction=False) as p:
            for b in buckets:
                p.hgetall(self._k("agg", str(b)))
            rows = await p.execute()
        out: dict[tuple[int, str], list[float]] = {}
        for b, row in zip(buckets, rows, strict=True):
            for k, vec in _vectors(row, AGG_SIZE).items():
                out[(b, k)] = vec
        return out

    @_unavailable
    async def totals(self) -> dict[str, list[float]]:
        return _vectors(await self.r.hgetall(self._k("agg", "0")), AGG_SIZE)

    # -- keys -----------------------------------------------------------------------------------------------

    @_unavailable
    async def list_keys(self) -> list[dict[str, Any]]:
        return [_object(v) for v in (await self.r.hgetall(self._k("keys"))).values()]

    @_unavailable
    async def save_key(self, key: dict[str, Any]) -> None:
        await self.r.hset(self._k("keys"), key["id"], orjson.dumps(key).decode())

    @_unavailable
    async def delete_key(self, key_id: str) -> bool:
        return bool(await self.r.hdel(self._k("keys"), key_id))

    @_unavailable
    async def put_response(self, response_id: str, owner: str, data: bytes, expires: float) -> None:
        # One string per Response: the owner, a newline, the record; Redis expires it.
        await self.r.set(self._k("resp", response_id), owner.encode() + b"\n" + data, pxat=int(expires * 1000))

    @_unavailable
    async def get_response(self, response_id: str) -> tuple[str, bytes] | None:
        value = await self.r.get(self._k("resp", response_id))
        if value is None:
            return None
        if isinstance(value, str):
            value = value.encode()
        owner, _, data = value.partition(b"\n")
        return owner.decode(), data

    @_unavailable
    async def delete_response(self, response_id: str) -> bool:
        return bool(await self.r.delete(self._k("resp", response_id)))

    @_unavailable
    async def touch_responses(self, response_ids: list[str], expires: float) -> None:
        if not response_ids:
            return
        async with self.r.pipeline(transaction=False) as p:
            for rid in response_ids:
                p.pexpireat(self._k("resp", rid), int(expires * 1000))
            await p.execute()

    @_unavailable
    async def key_usage(self, day: str) -> dict[str, list[float]]:
        return _vectors(await self.r.hgetall(self._k("keyuse", day)), len(KEY_USAGE_FIELDS))


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _text_map(row: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """A hash as text (the client decodes replies; the types do not know that)."""
    return {_text(k): _text(v) for k, v in row.items()}


def _object(raw: object) -> dict[str, Any]:
    """One stored JSON object (a key, a log row)."""
    value = orjson.loads(raw) if isinstance(raw, (bytes, str)) else None
    if not isinstance(value, dict):
        raise TypeError("redis holds a record that is not an object")
    return value


def _health_row(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in HEALTH_COUNTS + HEALTH_FIELDS:
        v = row.get(f)
        if f == "reason":
            out[f] = v or None
        elif f in _FLOATS:
            out[f] = float(v) if v else 0.0
        else:
            out[f] = int(float(v)) if v else 0
    return out


def _vectors(row: Mapping[bytes | str, bytes | str], size: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for field, value in _text_map(row).items():
        k, _, i = field.rpartition(_FSEP)
        if not k or not i.isdigit() or int(i) >= size:
            continue
        vec = out.setdefault(k, [0.0] * size)
        v = float(value)
        vec[int(i)] = v if math.isfinite(v) else 0.0
    return out


def safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"
    return url
