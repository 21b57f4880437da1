"""The generic model request: parse in the client's dialect → the upstream → render back.

One handler serves every dialect; each dialect's routes call it through `dialects.front.Front`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import Response

from ..config import Settings
from ..core.conversation import GatewayError
from ..dialects.base import Dialect
from ..keys.registry import ClientKey
from ..observe.requestlog import RequestLog
from ..upstream.relay import Upstream
from ..web.http import JSONResponse, StreamedReply, error_response, json_body
from ..web.readgate import answered
from .auth import ClientAuth

__all__ = ["Handler"]

log = logging.getLogger("kiro_gateway")
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class Handler:
    """`dialects.front.Front`: authentication and the generic handler, for the dialects' routes."""

    def __init__(self, settings: Settings, auth: ClientAuth, requests: RequestLog, upstream: Upstream) -> None:
        self.settings = settings
        self.auth = auth
        self.requests = requests
        self.upstream = upstream

    def authorized(self, request: Request) -> bool:
        return self.auth.authorized(request)

    def client(self, request: Request) -> ClientKey | None:
        return self.auth.client(request)

    async def handle(self, request: Request, dialect: Dialect) -> Response:
        rec = self.requests.begin(request, dialect.name)  # request log: closed by the reply's end
        try:
            await self.auth.admit(request, rec)
            body = await json_body(request)
            prepare = getattr(dialect, "prepare", None)  # a dialect that reads state before parsing
            if prepare is not None:
                await prepare(body, request)
            conv = dialect.parse(body, request)
            del body  # the parsed JSON (thousands of objects) is not kept while Kiro is waited for
            if not self.settings.log_bodies:  # (the request log reads it at the end when it records bodies)
                request.__dict__.pop("_body", None)  # parsed: let Starlette's cached raw body go
            rec.model = conv.model
            # The conversation's content is dropped once the Kiro body is built: many open
            # streams, little memory.
            reply = await self.upstream.open(conv, release=True)
        except GatewayError as e:
            return rec.failed(e, error_response(dialect, e))
        finally:  # Kiro answered (or it failed): the request's body is no longer held
            answered(request)
        served = {"x-kiro-model": reply.served_model}  # which Kiro model answered (a fallback's?)
        if reply.request.dropped_turns:  # the oldest turns were left out to fit the window
            rec.trimmed = reply.request.dropped_turns
            served["x-kiro-trimmed-messages"] = str(rec.trimmed)
        if reply.request.repaired:  # Kiro refused the body for a rule the gateway then repaired
            rec.rule = reply.request.repaired
            served["x-kiro-repaired"] = reply.request.repaired
        if conv.stream:
            chunks = dialect.stream(conv, aiter(reply), reply.input_estimate)
            return StreamedReply(guard(chunks, dialect, rec.streaming(reply)),
                                 dialect.stream_media_type, _SSE_HEADERS | served,
                                 self.settings.stream_write_window_ms / 1e3)
        try:
            events = await reply.collect()
            return rec.answered(reply, JSONResponse(dialect.whole(conv, events, reply.input_estimate),
                                                    headers=served))
        except GatewayError as e:
            return rec.failed(e, error_response(dialect, e))


async def guard(chunks: AsyncIterator[bytes], dialect: Dialect,
                ended: Callable[[str | None], None] | None = None) -> AsyncIterator[bytes]:
    """Never let a bug end a stream without a word: the client gets an error in its dialect."""
    error = None
    try:
        async for chunk in chunks:
            yield chunk
    except Exception as e:  # noqa: BLE001 - last line of defence, logged
        log.exception("stream failed")
        error = "internal"
        yield dialect.stream_error(GatewayError("internal", f"gateway error: {type(e).__name__}"))
    finally:
        if ended is not None:
            ended(error)  # the request log's record of this stream (also when the client left)
