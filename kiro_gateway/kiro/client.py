"""HTTP calls to Kiro: generateAssistantResponse, and the upstream error → neutral error mapping.

One pooled keep-alive aiohttp session serves every request (created inside the running loop).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp
import orjson

from ..conversation import GatewayError
from .identity import chat_headers

__all__ = ["KiroHttp", "upstream_error", "UpstreamStatus"]


class UpstreamStatus(GatewayError):
    """Kiro answered with an error status; `upstream_status` and `body` say what it was."""

    def __init__(self, kind, message, status, upstream_status: int, body: str,
                 reason: str | None = None) -> None:
        super().__init__(kind, message, status)
        self.upstream_status = upstream_status
        self.body = body
        self.reason = reason


class KiroHttp:
    def __init__(self, connect_timeout: float = 10.0, limit: int = 0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.connect_timeout = connect_timeout
        self.limit = limit

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.limit, ttl_dns_cache=300,
                                             enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
                auto_decompress=False,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def generate(self, base_url: str, body: bytes, token: str, kiro_version: str,
                       machine_id: str, api_key_auth: bool = False,
                       proxy: str | None = None) -> aiohttp.ClientResponse:
        """POST the body; return the response once its status line and headers arrived."""
        url = base_url + "/generateAssistantResponse"
        host = urlsplit(base_url).netloc
        headers = chat_headers(token, kiro_version, machine_id, host, api_key_auth)
        try:
            return await self.session.post(url, data=body, headers=headers, proxy=proxy)
        except asyncio.TimeoutError as e:
            raise GatewayError("timeout", "Timed out connecting to Kiro.") from e
        except aiohttp.ClientError as e:
            raise GatewayError("upstream", f"Could not reach Kiro: {type(e).__name__}: {e}") from e


def _reason(body: str) -> tuple[str | None, str]:
    """(reason, message) from a Kiro error body, which may be JSON of several shapes or text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, body.strip()[:500]
    if not isinstance(data, dict):
        return None, body.strip()[:500]
    inner = data.get("error") if isinstance(data.get("error"), dict) else data
    reason = inner.get("reason") or data.get("reason")
    message = inner.get("message") or inner.get("Message") or data.get("message") or ""
    return (str(reason) if reason else None), str(message)[:500]


def upstream_error(status: int, body: str) -> UpstreamStatus:
    """Map a Kiro error answer to a neutral error (fact sheet §8.1, §8.2)."""
    reason, message = _reason(body)
    text = f"{reason or ''} {message} {body[:2000]}"
    if "CONTENT_LENGTH_EXCEEDS_THRESHOLD" in text:
        return UpstreamStatus(
            "invalid_request",
            "Context window is full (Kiro: CONTENT_LENGTH_EXCEEDS_THRESHOLD). Reduce the conversation "
            "history, system prompt or tools — e.g. run /compact in Claude Code — and retry.",
            400, status, body, reason)
    if "Input is too long" in text:
        return UpstreamStatus(
            "invalid_request",
            "Input is too long for Kiro. Reduce the size of your messages (large pasted files, "
            "images or tool results) and retry.", 400, status, body, reason)
    if status == 402 or "MONTHLY_REQUEST_COUNT" in text:
        return UpstreamStatus("rate_limit", "Kiro monthly request quota is exhausted for this account.",
                              429, status, body, reason or "MONTHLY_REQUEST_COUNT")
    if status in (401, 403):
        if "TEMPORARILY_SUSPENDED" in text or "suspended" in text.lower():
            return UpstreamStatus("permission", f"The Kiro account is suspended: {message}",
                                  403, status, body, reason or "TEMPORARILY_SUSPENDED")
        if "bearer token" in text.lower() and "invalid" in text.lower():
            return UpstreamStatus("authentication", "Kiro rejected the account's access token.",
                                  401, status, body, "BEARER_INVALID")
        return UpstreamStatus("permission" if status == 403 else "authentication",
                              f"Kiro refused the request ({status}): {message}", status, status, body, reason)
    if status == 429:
        return UpstreamStatus("rate_limit", f"Kiro is rate limiting this account: {message or 'Too many requests'}",
                              429, status, body, reason)
    if status == 400:
        return UpstreamStatus("invalid_request", f"Kiro rejected the request: {message or body[:300]}",
                              400, status, body, reason)
    if status in (503, 529) or "MODEL_TEMPORARILY_UNAVAILABLE" in text or "high load" in text:
        return UpstreamStatus("overloaded", f"Kiro is overloaded: {message or status}", 529, status, body, reason)
    if status == 408 or status == 504:
        return UpstreamStatus("timeout", f"Kiro timed out ({status}).", 504, status, body, reason)
    if 400 <= status < 500:
        return UpstreamStatus("invalid_request", f"Kiro refused the request ({status}): {message}",
                              400 if status != 404 else 502, status, body, reason)
    return UpstreamStatus("upstream", f"Kiro failed ({status}): {message or 'no details'}", 502, status, body, reason)
