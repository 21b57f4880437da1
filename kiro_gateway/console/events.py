"""Live updates for the console over Server-Sent Events (GET /admin/events).

Once a second (so bursts are folded into one message) the stream compares the pool's credential
views with what it last sent and sends only the changed ones (`credentials`), and sends request-log
entries that appeared since (`logs`). A comment line every 15 s keeps proxies from closing it. The
data are the admin API's own views (masked), so nothing here can show more than the admin API does.
After an hour, or once its session is signed out, the stream ends; EventSource reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..admin.logs import log_entry
from ..admin.services import AdminServices
from ..admin.routes import AdminApi
from ..state.base import LogQuery, StoreError

__all__ = ["event_stream", "PoolWatch", "LogWatch"]

log = logging.getLogger("kiro_gateway.console")
TICK = 1.0
HEARTBEAT = 15.0
MAX_AGE = 3600.0


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class PoolWatch:
    """What changed in the credential views since the last look."""

    def __init__(self, gw: AdminServices) -> None:
        self.api = AdminApi(gw)
        self.pool = gw.pool
        self.seen: dict[str, bytes] = {}

    def changes(self) -> dict[str, Any] | None:
        now, current = time.time(), self.pool.current_id()
        views = {str(c.id): self.api.view(c, current, now) for c in self.pool.credentials}
        changed = []
        for cid, v in views.items():
            blob = orjson.dumps(v)
            if self.seen.get(cid) != blob:
                self.seen[cid] = blob
                changed.append(v)
        removed = [cid for cid in self.seen if cid not in views]
        for cid in removed:
            del self.seen[cid]
        if not changed and not removed:
            return None
        return {"changed": changed, "removed": removed, "total": len(views),
                "available": sum(v["status"] == "active" for v in views.values())}


class LogWatch:
    """Request-log entries written since the last look (the writer flushes twice a second)."""

    def __init__(self, gw: AdminServices) -> None:
        self.store = gw.store
        self.start = time.time() - 5
        self.sent: set[str] = set()

    async def fresh(self) -> list[dict[str, Any]]:
        # by start time, so a long stream that ends late is still in the window
        since = max(self.start, time.time() - 900)
        items, _ = await self.store.query_logs(LogQuery(since=since, limit=200))
        out = [r for r in items if r.get("id") not in self.sent]
        if len(self.sent) > 5000:
            self.sent.clear()
        for r in out:
            self.sent.add(r["id"])
        out.sort(key=lambda r: r.get("time") or 0)
        return [log_entry(r) for r in out]


async def _events(gw: AdminServices, request: Request, allowed: Callable[[], bool]) -> AsyncIterator[bytes]:
    pool, logs = PoolWatch(gw), LogWatch(gw)
    yield b"retry: 2000\n" + _event("hello", {"time": time.time()})
    started = last_beat = time.monotonic()
    first = pool.changes()
    if first:
        yield _event("credentials", first)
    while time.monotonic() - started < MAX_AGE:
        await asyncio.sleep(TICK)
        if await request.is_disconnected() or not allowed():  # gone, or signed out meanwhile
            return
        try:
            changes = pool.changes()
            if changes:
                yield _event("credentials", changes)
            entries = await logs.fresh()
            if entries:
                yield _event("logs", {"items": entries})
        except StoreError:
            yield _event("problem", {"message": "The state store is unreachable."})
        except Exception:  # noqa: BLE001 - logged; the stream goes on
            log.exception("console events failed")
        if time.monotonic() - last_beat >= HEARTBEAT:
            last_beat = time.monotonic()
            yield b": ping\n\n"


def event_stream(gw: AdminServices, request: Request, allowed: Callable[[], bool] = lambda: True) -> StreamingResponse:
    return StreamingResponse(_events(gw, request, allowed), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})
