"""The request log: records queue up in memory; the state writer turns them into rows and aggregates.

Per request: time, client dialect and user agent, client key name, model asked and Kiro model,
credential, status, retries, time to first byte, total time, tokens in and out, Kiro credits
(meteringEvent), error kind. Bodies only with `logBodies`, redacted (redact.py). The request path
only appends to a bounded deque; everything else happens in `collect`, on the writer's schedule.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..state.base import AGG_SIZE, BUCKET_SECONDS, KEY_USAGE_FIELDS, LATENCY_BUCKETS, LATENCY_HIST, TTFB_HIST, \
    Batch, add_vector, agg_key
from ..core.trace import CURRENT
from ..util.clock import utc_day
from .record import RequestRecord, request_id
from .redact import redact_body

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..config import Settings

log = logging.getLogger("kiro_gateway.requests")
_access = logging.getLogger("kiro_gateway.access")  # one line per finished request (logFormat json, or debug)

__all__ = ["RequestLog", "utc_day"]

_MAX_PENDING = 20_000  # records kept while the store is unreachable; the oldest go first
_WAKE_AT = 500  # this many pending records: write now rather than at the next tick


def _bucket(seconds: float) -> int:
    return next((i for i, le in enumerate(LATENCY_BUCKETS) if seconds <= le), len(LATENCY_BUCKETS))


class RequestLog:
    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.pending: deque[RequestRecord] = deque()
        self.dropped = 0
        self.on_usage: Callable[[str, int], None] | None = None  # per-key token accounting
        self.wake: Callable[[], None] = lambda: None
        self.secrets: Callable[[], tuple[str, ...]] = tuple  # the pool's secrets, redacted from bodies
        self._carry = Batch()  # what a failed write gave back

    @property
    def bodies(self) -> bool:
        return self.settings.log_bodies

    # -- the request path --------------------------------------------------------------------------

    def begin(self, request: "Request", dialect: str) -> RequestRecord:
        rec = RequestRecord(self, request, dialect)
        CURRENT.set(rec)
        return rec

    def finish(self, rec: RequestRecord) -> None:
        if rec.total:
            return  # closed already (a stream's end after an error answer)
        rec.total = time.perf_counter() - rec.t0
        self.pending.append(rec)
        if len(self.pending) > _MAX_PENDING:
            self.pending.popleft()
            self.dropped += 1
        if rec.key_id is not None and self.on_usage is not None:
            self.on_usage(rec.key_id, rec.tokens_in + rec.tokens_out)
        if len(self.pending) >= _WAKE_AT:
            self.wake()
        if self.settings.log_format == "json" or _access.isEnabledFor(logging.DEBUG):
            _access.info("%s %s %s %d in %.0f ms", rec.dialect, rec.model or "-", rec.kiro_model or "-", rec.status,
                         rec.total * 1000, extra={"kg_record": rec})

    # -- the writer's source protocol ----------------------------------------------------------------

    def collect(self, batch: Batch) -> None:
        carry, self._carry = self._carry, Batch()
        batch.logs.extend(carry.logs)
        for k, v in carry.aggregates.items():
            add_vector(batch.aggregates.setdefault(k, [0.0] * AGG_SIZE), v)
        for day_key, v in carry.key_usage.items():
            add_vector(batch.key_usage.setdefault(day_key, [0.0] * len(KEY_USAGE_FIELDS)), v)
        pending, self.pending = self.pending, deque()
        bodies = self.bodies
        secrets_: tuple[str, ...] = ()
        if bodies:
            own = (self.settings.api_key, self.settings.admin_api_key, self.settings.metrics_key)
            secrets_ = tuple(s for s in (*own, *self.secrets()) if s)
        for rec in pending:
            row = self.row(rec, bodies, secrets_)
            batch.logs.append(row)
            vec = self.vector(rec, row)
            key = agg_key(rec.dialect, rec.kiro_model or "-", rec.credential or "-", rec.status)
            bucket = int(rec.started) // BUCKET_SECONDS * BUCKET_SECONDS
            for b in (bucket, 0):
                add_vector(batch.aggregates.setdefault((b, key), [0.0] * AGG_SIZE), vec)
            if rec.key_id is not None:
                use = [1.0, rec.tokens_in, rec.tokens_out, rec.credits or 0.0, float(row["isError"])]
                add_vector(batch.key_usage.setdefault((rec.key_id, utc_day(rec.started)),
                                                      [0.0] * len(KEY_USAGE_FIELDS)), use)

    def done(self, batch: Batch, ok: bool) -> None:
        if ok:
            return
        keep = batch.logs[-_MAX_PENDING:]
        self.dropped += len(batch.logs) - len(keep)
        self._carry = Batch(logs=keep, aggregates=batch.aggregates, key_usage=batch.key_usage)

    async def after(self) -> None:
        return None

    # -- shaping -------------------------------------------------------------------------------------

    @staticmethod
    def row(rec: RequestRecord, bodies: bool = False, secrets_: tuple[str, ...] = ()) -> dict[str, Any]:
        ua = rec.request.headers.get("user-agent") if rec.request is not None else None
        row: dict[str, Any] = {
            "id": request_id(rec) or secrets.token_hex(8),
            "time": rec.started,
            "dialect": rec.dialect,
            "userAgent": ua[:200] if ua else None,
            "key": rec.key,
            "model": rec.model,
            "kiroModel": rec.kiro_model,
            "credential": rec.credential,
            "status": rec.status,
            "retries": max(0, rec.attempts - 1),
            "trimmedMessages": rec.trimmed,
            "kiroRule": rec.rule,
            "ttfbMs": round(rec.ttfb * 1000, 1) if rec.ttfb is not None else None,
            "totalMs": round(rec.total * 1000, 1),
            "tokensIn": rec.tokens_in,
            "tokensOut": rec.tokens_out,
            "credits": rec.credits,
            "stream": rec.stream,
            "error": rec.error,
            "errorMessage": rec.message[:300] if rec.message else None,
            "isError": rec.status >= 400 or rec.error is not None,
        }
        if bodies and rec.request is not None:
            row["requestBody"] = redact_body(getattr(rec.request, "_body", None), secrets_)
            row["responseBody"] = redact_body(rec.response_body, secrets_)
        return row

    @staticmethod
    def vector(rec: RequestRecord, row: dict[str, Any]) -> list[float]:
        vec = [0.0] * AGG_SIZE
        vec[0] = 1.0
        vec[1] = float(row["isError"])
        vec[2], vec[3], vec[4] = rec.tokens_in, rec.tokens_out, rec.credits or 0.0
        vec[5] = row["retries"]
        vec[6] = rec.total
        if rec.ttfb is not None:
            vec[7], vec[8] = rec.ttfb, 1.0
            vec[TTFB_HIST.start + _bucket(rec.ttfb)] = 1.0
        vec[LATENCY_HIST.start + _bucket(rec.total)] = 1.0
        return vec
