"""The one-way path's middle: Conversation → Kiro request → HTTP → reply events.

`Upstream.open()` returns only once Kiro has accepted the request and its first events arrived,
so every failure that happens before the client has received a byte surfaces as a `GatewayError`
(a proper HTTP status in the client's dialect); failures after that arrive as an `ErrorEvent` in
the stream. Dialects never see Kiro, the pool never sees a dialect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Mapping

import aiohttp
import orjson

from ..config import Settings
from ..core.conversation import ContextOverflow, Conversation, ErrorEvent, GatewayError, Message, ReplyEvent, \
    TextDelta, TextPart
from ..kiro.auth import RefreshError
from ..kiro.client import OVERFLOW_REASONS, KiroHttp, UpstreamStatus, retry_after_seconds, upstream_error
from ..kiro.compact import Compactor
from ..kiro.endpoints import needs_profile
from ..kiro.eventstream import EventStreamError
from ..kiro.events import ReplyMapper
from ..kiro.models import UnknownModel
from ..kiro.repair import REPAIRABLE, repair
from ..kiro.request import KiroRequest, RequestOptions, build_request
from ..kiro.rules import diagnose, explain
from ..pool.availability import ModelUnavailable, check_servable, unavailable
from ..pool.facts import AccountFacts
from ..pool.pool import CredentialPool, Lease
from ..util.ids import jitter
from .catalog import ModelCatalog
from .search import Searcher
from .searching import Reply, Searching
from .stream import ReplyStream

__all__ = ["Upstream", "ReplyStream"]

log = logging.getLogger("kiro_gateway.upstream")

def session_key(conv: Conversation) -> str:
    """What ties requests of one client session together, for stickiness."""
    if conv.session_id:
        return "s:" + conv.session_id
    first = next((p.text for m in conv.messages if m.role == "user" for p in m.parts
                  if isinstance(p, TextPart)), "")
    digest = hashlib.blake2b((conv.system[:4096] + "\0" + first[:4096]).encode(), digest_size=12)
    return "h:" + digest.hexdigest()


def backoff(attempt: int) -> float:
    """kiro.rs's schedule: min(200 ms · 2^n, 2 s) plus up to a quarter of it as jitter."""
    base = min(0.2 * (2 ** attempt), 2.0)
    return base + jitter(0, base / 4)


# Failures after which this credential is not tried again for the request.
_SWITCH_KINDS = {"rate_limit", "permission", "authentication"}


class _Lacks(GatewayError):
    """This account does not have the model (its list, or Kiro's INVALID_MODEL_ID)."""


class Upstream:
    def __init__(self, settings: Settings, pool: CredentialPool, http: KiroHttp, facts: AccountFacts,
                 catalog: ModelCatalog) -> None:
        self.settings = settings
        self.pool = pool
        self.http = http
        self.facts = facts
        self.catalog = catalog
        self.compactor = Compactor()
        self.searching = Searching(settings, Searcher(settings, pool, http, facts), self.prepare, self._chat)

    def prepare(self, conv: Conversation, overflow: str | None = None) -> KiroRequest:
        try:
            return build_request(conv, self.catalog.mapper, RequestOptions(
                self.settings.max_payload_bytes, overflow or self.settings.overflow_policy,
                window_of=self.catalog.window))
        except UnknownModel as e:
            raise GatewayError("invalid_request", str(e)) from e

    async def open(self, conv: Conversation, release: bool = False) -> Reply:
        """The reply to the conversation: a chat with Kiro, or, for a request that declares a web
        search (`webSearch: on`), a search answer or a chat that searches (searching.py)."""
        if conv.web_search is not None and self.settings.web_search == "on":
            return await self.searching.open(conv, session_key(conv))  # keeps the content: it may go on
        return await self._chat(conv, release)

    async def _chat(self, conv: Conversation, release: bool = False) -> ReplyStream:
        """Send the conversation, failing over between credentials until one answers.

        At most `max_attempts_per_credential` tries on one credential and `max_attempts` in all;
        400-class request errors are final; throttling, quota, suspension and auth failures move
        on to another credential; 5xx, timeouts and network errors retry with backoff. Nothing is
        retried once the client may have received bytes: this returns before any are sent.
        `release`: the caller no longer needs the conversation's content once the Kiro body is
        built, so it is dropped before waiting on the network (memory under many open streams).
        """
        request = self.prepare(conv)  # a bad request fails here, before the pool is touched
        chain = [request] + self._fallbacks(conv, request)
        session = session_key(conv)
        name = conv.model
        if release:
            conv.forget_content()
        for i, req in enumerate(chain):
            if req.overflowing:  # the compact policy: the oldest turns summarised first (kiro/compact.py)
                body, dropped = await self.compactor.compact(
                    orjson.loads(req.body), req.fixed, req.conversation_id, req.budget or req.model.context_window,
                    req.byte_limit, req.model.context_window, lambda text: self._ask(name, text, session))
                req.replace(body, dropped)
            try:
                reply = await self._open(conv, req, session, name)
            except ModelUnavailable:
                if i == len(chain) - 1:
                    raise
                continue  # the configured fallback chain's next model
            reply.fallback = i > 0
            return reply
        raise AssertionError("unreachable")

    def _fallbacks(self, conv: Conversation, request: KiroRequest) -> list[KiroRequest]:
        """The configured `modelFallbacks` for this model (by client name or Kiro id), as requests
        built now, while the conversation is still at hand."""
        table = self.settings.model_fallbacks
        chain = table.get(conv.model) or table.get(request.model.kiro_id) or []
        out, seen = [], {request.model.kiro_id}
        for alt in chain:
            try:
                alt_request = self.prepare(dataclasses.replace(conv, model=alt))
            except GatewayError:
                continue
            if alt_request.model.kiro_id not in seen:
                seen.add(alt_request.model.kiro_id)
                out.append(alt_request)
        return out

    async def _open(self, conv: Conversation, request: KiroRequest, session: str, name: str) -> ReplyStream:
        model_id = request.model.kiro_id
        s = self.settings
        check_servable(self.pool, self.facts, model_id, name)
        tries: dict[str, int] = {}
        forced: set[str] = set()
        shrunk = False  # the body was trimmed once more after Kiro said it does not fit
        last: GatewayError | None = None
        attempt = 0
        while attempt < s.max_attempts:
            spent = {cid for cid, n in tries.items() if n >= s.max_attempts_per_credential}
            try:  # a retry prefers a credential not tried yet, then any with tries left
                lease = await self.pool.acquire(model_id, session, spent | tries.keys())
            except GatewayError:
                try:
                    lease = await self.pool.acquire(model_id, session, spent)
                except GatewayError as e:
                    if self.pool.candidates() and not any(self.pool.can_serve(c, model_id)
                                                          for c in self.pool.candidates()):
                        raise unavailable(self.pool, self.facts, model_id, name) from None
                    raise self._final(last or e) from None
            cid = lease.credential.id
            if tries.get(cid):
                await asyncio.sleep(backoff(tries[cid] - 1))
            tries[cid] = tries.get(cid, 0) + 1
            attempt += 1
            self.pool.begin(lease)
            try:
                reply = await self._attempt(conv, request, lease)
                request.release()
                return reply
            except _Lacks as e:  # not the account's fault: no penalty, not counted, next account
                self.pool.end(lease)
                tries[cid] = s.max_attempts_per_credential
                attempt -= 1
                last = e
            except UpstreamStatus as e:
                self.pool.end(lease)
                if e.reason == "INVALID_MODEL_ID":
                    await self.facts.model_missing(cid, model_id)
                    tries[cid] = s.max_attempts_per_credential
                    attempt -= 1
                    last = _Lacks("not_found", e.message, 404)
                    continue
                if e.reason == "BEARER_INVALID" and cid not in forced and lease.credential.refresh_token:
                    forced.add(cid)  # revoked early: refresh once and retry, not counted
                    tries[cid] -= 1
                    if not tries[cid]:
                        del tries[cid]
                    attempt -= 1
                    try:
                        await self.pool.token_for(lease.credential, force=True)
                    except RefreshError:
                        tries[cid] = s.max_attempts_per_credential
                    continue
                if e.reason in OVERFLOW_REASONS:
                    full = ContextOverflow(request.size // 4, request.model.context_window, f"Kiro: {e.reason}")
                    if s.overflow_policy in ("trim", "compact") and not shrunk:
                        # Kiro counts its own way: once, a quarter smaller, on the same account.
                        shrunk = True
                        try:
                            request.shrink(int(request.size * 0.75), "trim")
                        except ContextOverflow:
                            raise full from None  # nothing left to drop: Kiro's figures, not the retry's
                        tries[cid] -= 1
                        attempt -= 1
                        continue
                    raise full from None
                if e.kind == "invalid_request":
                    explained = self._explained(e, request, self.facts.known_models(cid))
                    rule = explained.rule
                    if rule in REPAIRABLE and request.repaired is None and self._repair(request, rule):
                        tries[cid] -= 1  # once, on the same account, not counted
                        attempt -= 1
                        continue
                    raise explained from None
                self.pool.failed(lease, e.kind, e.reason, e.message, e.retry_after)
                if e.kind in _SWITCH_KINDS:
                    tries[cid] = s.max_attempts_per_credential
                last = e
            except GatewayError as e:
                self.pool.end(lease)
                if e.kind == "invalid_request":
                    raise
                self.pool.failed(lease, e.kind, None, e.message)
                last = e
        raise self._final(last or GatewayError("upstream", "Kiro could not be reached."))

    @staticmethod
    def _explained(err: UpstreamStatus, request: KiroRequest, models: Mapping[str, object] | None) -> GatewayError:
        """Kiro's bare "Improperly formed request.": our copy of its rules, run on what was sent
        (with the account's model list, where known), says which one broke and where (and the
        rule goes into the request log)."""
        if "Improperly formed" not in err.body:
            return err
        try:
            found = diagnose(orjson.loads(request.body), request.size, models.keys() if models else None)
        except Exception:  # noqa: BLE001 - the explanation is a courtesy; Kiro's answer still stands
            found = None
        if found is None:
            return err
        out = GatewayError("invalid_request", explain(*found))
        out.rule = found[0]
        return out

    @staticmethod
    def _repair(request: KiroRequest, rule: str) -> bool:
        """Kiro refused the body for a rule we can repair (kiro/repair.py): the body repaired for
        one more try — for that rule and any other repairable one our copy of the rules then finds
        — unless it would still break one."""
        body = orjson.loads(request.body)
        done: list[str] = []
        found: tuple[str, str] | None = (rule, "")
        while found is not None:
            if found[0] in done or not repair(body, found[0]):
                return False
            done.append(found[0])
            data = orjson.dumps(body)
            found = diagnose(body, len(data))
        request.replace(data, 0)
        request.repaired = ",".join(done)
        return True

    async def _ask(self, model: str, text: str, session: str) -> str:
        """One question to the model on the normal path, its whole answer's text (a summary for
        compaction). The question itself is trimmed, never compacted (no recursion)."""
        conv = Conversation(model=model, messages=[Message("user", [TextPart(text)])], max_tokens=4096)
        request = self.prepare(conv, "trim")
        reply = await self._open(conv, request, session, model)  # the session's account, when it has one
        events = await reply.collect()
        return "".join(e.text for e in events if isinstance(e, TextDelta))

    def _final(self, err: GatewayError) -> GatewayError:
        """The error the client gets; when every account rests, it says until when (Retry-After)."""
        if err.retry_after is None and err.status in (429, 503, 529):
            err.retry_after = self.pool.seconds_until_ready()
        return err

    async def _attempt(self, conv: Conversation, request: KiroRequest, lease: Lease) -> ReplyStream:
        """One try on one credential: returns once Kiro accepted and its first events arrived."""
        # Provisional input tokens until Kiro reports its context usage (at the end of the stream).
        mapper = ReplyMapper(request.tool_names, request.thinking, request.model.context_window,
                             max(1, request.size // 4))
        resp: aiohttp.ClientResponse | None = None
        limit = self.settings.first_token_timeout
        try:
            async with asyncio.timeout(limit):
                route = await self.facts.route(lease)
                version = self.facts.kiro_version(lease.credential)
                models = await self.facts.models(lease, route)
                if models is not None:
                    if request.model.kiro_id not in models:
                        raise _Lacks("not_found", f"this account has no {request.model.kiro_id}", 404)
                    window = models[request.model.kiro_id][0]
                    if window:  # the account's own tokenLimits: what context percentages are of
                        mapper.context_window = window
                while True:
                    body = request.with_profile(route.arn)
                    cli = route.host if (lease.credential.identity or self.settings.identity) == "cli" else None
                    resp = await self.http.generate(route.base, body, lease.token, version,
                                                    lease.machine_id, lease.api_key_auth, lease.proxy, cli)
                    del body
                    if resp.status == 200:
                        break
                    said = (await resp.read()).decode("utf-8", "replace")
                    resp.release()
                    if route.can_switch and needs_profile(resp.status, said):
                        route = await self.facts.switched(lease, route)  # once, unseen by the client
                        continue
                    raise upstream_error(resp.status, said, retry_after_seconds(resp.headers.get("Retry-After")))
                first = await self._first_batch(resp, mapper)
        except TimeoutError as e:
            if resp is not None:
                resp.close()
            raise GatewayError("timeout", f"Kiro sent no reply within {limit:g} s.") from e
        self.pool.succeeded(lease)
        return ReplyStream(resp, mapper, first, self.settings, request, lease, conv.json_mode,
                           on_close=self.pool.end, stop_sequences=conv.stop_sequences)

    async def _first_batch(self, resp: aiohttp.ClientResponse, mapper: ReplyMapper) -> list[ReplyEvent]:
        """Wait for Kiro's first events so a failure before any output is still an HTTP error."""
        try:
            while True:
                chunk = await resp.content.readany()
                if not chunk:
                    return []
                events = mapper.feed(chunk)
                if events:
                    break
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
