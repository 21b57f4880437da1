"""The one-way path's middle: Conversation → Kiro request → HTTP → reply events.

`Upstream.open()` returns only once Kiro has accepted the request and its first events arrived,
so every failure that happens before the client has received a byte surfaces as a `GatewayError`
(a proper HTTP status in the client's dialect); failures after that arrive as an `ErrorEvent` in
the stream. Dialects never see Kiro, the pool never sees a dialect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from .config import Settings
from .conversation import Conversation, ErrorEvent, GatewayError, Ping, ReplyEvent
from .jsonmode import json_only
from .kiro.client import KiroHttp, upstream_error
from .kiro.eventstream import EventStreamError
from .kiro.events import ReplyMapper
from .kiro.models import ModelMapper, UnknownModel
from .kiro.request import KiroRequest, RequestOptions, build_request
from .pool.pool import CredentialPool, Lease

__all__ = ["Upstream", "ReplyStream"]

_PING = [Ping()]


class ReplyStream:
    """Reply events of one accepted upstream response, in batches (one per network read)."""

    def __init__(self, resp: aiohttp.ClientResponse, mapper: ReplyMapper,
                 first: list[ReplyEvent], settings: Settings, request: KiroRequest, lease: Lease,
                 json_mode: bool = False) -> None:
        self.resp = resp
        self.mapper = mapper
        self.input_estimate = mapper.estimated_input
        self.first = first
        self.ping_interval = settings.ping_interval
        self.read_timeout = settings.read_timeout
        self.request = request
        self.lease = lease
        self.json_mode = json_mode

    def __aiter__(self) -> AsyncIterator[list[ReplyEvent]]:
        return json_only(self._batches()) if self.json_mode else self._batches()

    async def _batches(self) -> AsyncIterator[list[ReplyEvent]]:
        try:
            if self.first:
                yield self.first
            async for batch in _read(self.resp, self.mapper, self.ping_interval, self.read_timeout):
                yield batch
        finally:
            self.resp.release()

    async def collect(self) -> list[ReplyEvent]:
        """Every event of the reply (for non-streaming answers), without keep-alives."""
        out: list[ReplyEvent] = []
        async for batch in self:
            out.extend(e for e in batch if not isinstance(e, Ping))
        return out


async def _read(resp: aiohttp.ClientResponse, mapper: ReplyMapper, ping: float,
                limit: float) -> AsyncIterator[list[ReplyEvent]]:
    content = resp.content
    idle = 0.0
    while True:
        try:
            async with asyncio.timeout(ping):
                chunk = await content.readany()
        except TimeoutError:
            idle += ping
            if idle >= limit:
                yield [ErrorEvent("timeout", f"Kiro sent nothing for {int(idle)} s; the reply was abandoned.")]
                return
            yield _PING
            continue
        except (aiohttp.ClientError, ConnectionError) as e:
            yield [ErrorEvent("upstream", f"Kiro's stream broke off: {type(e).__name__}")]
            return
        idle = 0.0
        if not chunk:
            break
        try:
            events = mapper.feed(chunk)
        except EventStreamError as e:
            yield [ErrorEvent("upstream", f"Kiro's stream could not be decoded: {e}")]
            return
        if events:
            yield events
            if mapper.errored:
                return
    try:
        mapper.check_truncated()
    except EventStreamError as e:
        yield [ErrorEvent("upstream", f"Kiro's stream ended mid-message: {e}")]
        return
    yield mapper.finish()


class Upstream:
    def __init__(self, settings: Settings, pool: CredentialPool, http: KiroHttp) -> None:
        self.settings = settings
        self.pool = pool
        self.http = http
        self.mapper = ModelMapper(settings.model_map, settings.default_model)

    def prepare(self, conv: Conversation, profile_arn: str | None = None) -> KiroRequest:
        try:
            return build_request(conv, self.mapper, RequestOptions(self.settings.max_payload_bytes, profile_arn))
        except UnknownModel as e:
            raise GatewayError("invalid_request", str(e)) from e

    async def open(self, conv: Conversation) -> ReplyStream:
        try:
            self.mapper.resolve(conv.model)  # reject an unmappable model before touching the pool
        except UnknownModel as e:
            raise GatewayError("invalid_request", str(e)) from e
        lease = await self.pool.acquire()
        request = self.prepare(conv, lease.credential.profile_arn)
        forced = False
        while True:
            resp = await self.http.generate(lease.api_base, request.body, lease.token,
                                            self.settings.kiro_version, lease.machine_id,
                                            lease.api_key_auth, lease.proxy)
            if resp.status == 200:
                break
            body = (await resp.read()).decode("utf-8", "replace")
            resp.release()
            err = upstream_error(resp.status, body)
            if err.reason == "BEARER_INVALID" and not forced and lease.credential.refresh_token:
                forced = True  # the token was revoked early: refresh once and retry
                lease.token = await self.pool.token_for(lease.credential, force=True)
                continue
            raise err
        # Provisional input tokens until Kiro reports its context usage (at the end of the stream).
        mapper = ReplyMapper(request.tool_names, request.thinking, request.model.context_window,
                             max(1, len(request.body) // 4))
        first = await self._first_batch(resp, mapper)
        return ReplyStream(resp, mapper, first, self.settings, request, lease, conv.json_mode)

    async def _first_batch(self, resp: aiohttp.ClientResponse, mapper: ReplyMapper) -> list[ReplyEvent]:
        """Wait for Kiro's first events so a failure before any output is still an HTTP error."""
        try:
            async with asyncio.timeout(self.settings.first_token_timeout):
                while True:
                    chunk = await resp.content.readany()
                    if not chunk:
                        return []
                    events = mapper.feed(chunk)
                    if events:
                        break
        except TimeoutError as e:
            resp.close()
            raise GatewayError("timeout", f"Kiro sent no reply within {self.settings.first_token_timeout:g} s.") from e
        except (aiohttp.ClientError, ConnectionError) as e:
            resp.close()
            raise GatewayError("upstream", f"Kiro's stream broke off before any output: {type(e).__name__}") from e
        except EventStreamError as e:
            resp.close()
            raise GatewayError("upstream", f"Kiro's stream could not be decoded: {e}") from e
        if mapper.errored and isinstance(events[0], ErrorEvent):
            resp.close()  # Kiro failed before producing anything: still an HTTP error
            raise GatewayError(events[0].kind, events[0].message)
        return events

