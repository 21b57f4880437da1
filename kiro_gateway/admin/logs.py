"""Admin endpoints over the request log and its aggregates: /logs, /logs/export, /stats."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..observe.stats import CredentialInfo, build_stats
from ..pool.credential import format_expiry
from ..state.base import LogQuery
from .services import AdminServices
from .common import AdminError, query_float, query_int

__all__ = ["LogsApi"]

_EXPORT_MAX = 100_000


def log_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "at": format_expiry(row.get("time") or 0)}


class LogsApi:
    gw: AdminServices

    def _query(self, request: Request, limit: int, max_limit: int) -> LogQuery:
        p = request.query_params
        q = LogQuery(since=query_float(request, "since"), until=query_float(request, "until"),
                     status=p.get("status") or None, model=p.get("model") or None,
                     credential=p.get("credential") or None, key=p.get("key") or None, text=p.get("q") or None,
                     limit=query_int(request, "limit", limit, 1, max_limit),
                     offset=query_int(request, "offset", 0, 0, 10**9))
        try:
            q.status_range()
        except ValueError as e:
            raise AdminError(400, str(e)) from None
        return q

    async def logs(self, request: Request):
        q = self._query(request, 100, 1000)
        await self.gw.writer.flush()  # the request that just ended is in the answer
        items, total = await self.gw.store.query_logs(q)
        return {"total": total, "offset": q.offset, "limit": q.limit, "items": [log_entry(r) for r in items]}

    async def export_logs(self, request: Request):
        q = self._query(request, _EXPORT_MAX, _EXPORT_MAX)
        await self.gw.writer.flush()
        items, _ = await self.gw.store.query_logs(q)
        body = b"".join(orjson.dumps(log_entry(r)) + b"\n" for r in items)
        name = time.strftime("kiro-gateway-logs-%Y%m%dT%H%M%SZ.jsonl", time.gmtime())
        return Response(body, media_type="application/x-ndjson",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    async def stats(self, request: Request):
        hours = query_int(request, "hours", 24, 1, 24)
        await self.gw.writer.flush()
        now = time.time()
        aggs = await self.gw.store.aggregates(now - hours * 3600)
        pool = self.gw.pool
        creds = []
        for c in pool.credentials:
            usage = pool.usage.cached(c)
            creds.append(CredentialInfo(c.id, pool.status(c), usage.remaining if usage and usage.limit else None,
                                        pool.usage.reset_at(c, now)))
        return build_stats(aggs, creds, hours, now)
