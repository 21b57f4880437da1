"""One web search through Kiro's MCP `web_search`, on an account of the pool.

The account is chosen as for chat (the session's account when it has one), on the host that
serves its chat, with its profile ARN (pool/facts.py). As with chat: the branded host's "profileArn
is required" moves the account to the legacy host once, unseen; a token Kiro calls invalid is
refreshed once; throttling, quota and auth failures go on the account's record and the next
account is tried. A failure of the search itself (`SearchFailed`) is final: another account
would not do better. docs/kiro-protocol.md, “Server tools, MCP and web search”.
"""

from __future__ import annotations

import logging

from ..config import Settings
from ..core.conversation import GatewayError, SearchHit, WebSearchTool
from ..kiro.auth import RefreshError
from ..kiro.client import KiroHttp, UpstreamStatus
from ..kiro.endpoints import needs_profile
from ..kiro.mcp import SearchFailed, web_search
from ..pool.facts import AccountFacts
from ..pool.pool import CredentialPool, Lease

__all__ = ["Searcher", "SearchFailed", "filter_domains"]

log = logging.getLogger("kiro_gateway.upstream")

ATTEMPTS = 3  # accounts tried for one search, at most (and never more than maxAttempts)


def _host_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split("@")[-1].split(":")[0].lower()


def _within(host: str, domains: list[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in (x.lower().strip().lstrip(".") for x in domains) if d)


def filter_domains(hits: list[SearchHit], tool: WebSearchTool) -> list[SearchHit]:
    """The client's allowed and blocked domains applied to results (Kiro's search takes only a query)."""
    allowed, blocked = tool.allowed_domains, tool.blocked_domains
    return [h for h in hits if (not allowed or _within(_host_of(h.url), allowed))
            and not _within(_host_of(h.url), blocked)]


class Searcher:
    def __init__(self, settings: Settings, pool: CredentialPool, http: KiroHttp, facts: AccountFacts) -> None:
        self.settings = settings
        self.pool = pool
        self.http = http
        self.facts = facts

    async def search(self, query: str, model_id: str | None, session: str) -> list[SearchHit]:
        """The results for `query`. Raises SearchFailed, or the GatewayError of the last account."""
        tried: set[str] = set()
        last: GatewayError | None = None
        for _ in range(min(ATTEMPTS, self.settings.max_attempts)):
            try:
                lease = await self.pool.acquire(model_id, session, tried)
            except GatewayError as e:
                raise last or e from None
            tried.add(lease.credential.id)
            self.pool.begin(lease)
            try:
                hits = await self._on(lease, query)
            except SearchFailed:
                raise
            except GatewayError as e:
                if e.kind == "invalid_request":
                    raise
                self.pool.failed(lease, e.kind, getattr(e, "reason", None), e.message, e.retry_after)
                log.info("credential #%s: web search failed (%s)", lease.credential.id, e.message[:200])
                last = e
            else:
                self.pool.succeeded(lease)
                return hits
            finally:
                self.pool.end(lease)
        raise last or GatewayError("upstream", "No account could run the web search.")

    async def _on(self, lease: Lease, query: str) -> list[SearchHit]:
        cred = lease.credential
        route = await self.facts.route(lease)
        token, refreshed = lease.token, False
        cli = (cred.identity or self.settings.identity) == "cli"
        while True:
            try:
                return await web_search(self.http, route.base, query, token, self.facts.kiro_version(cred),
                                        lease.machine_id, route.arn, lease.api_key_auth, lease.proxy, cli)
            except UpstreamStatus as e:
                if route.can_switch and needs_profile(e.upstream_status, e.body):
                    route = await self.facts.switched(lease, route)  # once: the legacy host cannot switch
                    continue
                if e.reason != "BEARER_INVALID" or refreshed or not cred.refresh_token:
                    raise
                refreshed = True  # revoked early: refresh once and ask again, as chat does
                try:
                    token = await self.pool.token_for(cred, force=True)
                except RefreshError:
                    raise e from None
