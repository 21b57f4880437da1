"""JSON in and out of the fake's aiohttp handlers."""

from __future__ import annotations

import orjson
from aiohttp import web

__all__ = ["json_response", "json_body"]


def json_response(status: int, body) -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(status=status, body=data, content_type="application/json")


async def json_body(request: web.BaseRequest):
    """The request's JSON, or None when it is empty or not JSON."""
    raw = await request.content.read()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
