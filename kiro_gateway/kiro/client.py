"""HTTP calls to Kiro: generateAssistantResponse, getUsageLimits, and the upstream error → neutral
error mapping.

One pooled keep-alive aiohttp session serves every direct or HTTP-proxied request (created inside
the running loop); each distinct SOCKS proxy gets its own session, since aiohttp only proxies HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import aiohttp
import orjson
import yarl

from ..core.conversation import ErrorKind, GatewayError
from .identity import chat_headers, cli_headers, usage_headers

__all__ = ["KiroHttp", "Proxy", "ProxyError", "upstream_error", "UpstreamStatus", "get_usage_limits",
           "retry_after_seconds", "OVERFLOW_REASONS"]

# The reasons of Kiro's answers that mean "the conversation does not fit" (tokens or bytes).
OVERFLOW_REASONS = frozenset({"CONTENT_LENGTH_EXCEEDS_THRESHOLD", "INPUT_TOO_LONG"})

_HTTP_SCHEMES = ("http", "https")
_SOCKS_SCHEMES = ("socks5", "socks5h", "socks4", "socks4a")


class ProxyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Proxy:
    """An outbound proxy: `url` without credentials; they are kept apart (never shown)."""

    url: str
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str, username: str | None = None, password: str | None = None) -> "Proxy":
        """Credentials in the URL count unless given separately. Raises ProxyError if unusable."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as e:
            raise ProxyError(f"proxy URL is not valid ({e})") from None
        scheme = parts.scheme.lower()
        if scheme not in _HTTP_SCHEMES + _SOCKS_SCHEMES or not parts.hostname:
            raise ProxyError("proxy URL must look like http://host:port or socks5://host:port")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        clean = f"{scheme}://{host}" + (f":{port}" if port else "")
        user = username or (unquote(parts.username) if parts.username else None)
        pw = password or (unquote(parts.password) if parts.password else None)
        return cls(clean, user, pw)

    @property
    def socks(self) -> bool:
        return self.url.split(":", 1)[0] in _SOCKS_SCHEMES

    def redact(self, text: str) -> str:
        """`text` without this proxy's credentials (aiohttp errors may quote the proxy URL)."""
        for secret in (self.password, self.username):
            if secret:
                text = text.replace(quote(secret, safe=""), "***").replace(secret, "***")
        return text

    def request_options(self) -> dict[str, Any]:
        """aiohttp request keywords for an HTTP(S) proxy (SOCKS lives in the connector)."""
        if self.socks:
            return {}
        if not self.username:
            return {"proxy": self.url}
        # Credentials in the proxy URL: aiohttp sends them as Proxy-Authorization both for CONNECT
        # (https targets) and for plain-http forwarding (its proxy_headers only cover CONNECT).
        scheme, rest = self.url.split("://", 1)
        userinfo = quote(self.username, safe="") + ":" + quote(self.password or "", safe="")
        return {"proxy": f"{scheme}://{userinfo}@{rest}"}


class UpstreamStatus(GatewayError):
    """Kiro answered with an error status; `upstream_status` and `body` say what it was."""

    def __init__(self, kind: ErrorKind, message: str, status: int | None, upstream_status: int, body: str,
                 reason: str | None = None) -> None:
        super().__init__(kind, message, status)
        self.upstream_status = upstream_status
        self.body = body
        self.reason = reason


class KiroHttp:
    def __init__(self, connect_timeout: float = 10.0, limit: int = 0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._socks: dict[Proxy, aiohttp.ClientSession] = {}
        self.connect_timeout = connect_timeout
        self.limit = limit

    def _new_session(self, connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
            auto_decompress=False,
            json_serialize=lambda o: orjson.dumps(o).decode(),
            skip_auto_headers=("User-Agent", "Content-Type"),
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._new_session(aiohttp.TCPConnector(
                limit=self.limit, ttl_dns_cache=300, enable_cleanup_closed=True))
        return self._session

    def via(self, proxy: Proxy | None) -> tuple[aiohttp.ClientSession, dict[str, Any]]:
        """(session, request keywords) that send a request through `proxy` (None: directly)."""
        if proxy is None:
            return self.session, {}
        if not proxy.socks:
            return self.session, proxy.request_options()
        sess = self._socks.get(proxy)
        if sess is None or sess.closed:
            from aiohttp_socks import ProxyConnector, ProxyType  # needed only with a SOCKS proxy

            parts = urlsplit(proxy.url)
            kind = ProxyType.SOCKS5 if parts.scheme.startswith("socks5") else ProxyType.SOCKS4
            # rdns: the proxy resolves host names (what socks5h means; harmless for socks5).
            connector = ProxyConnector(parts.hostname or "", parts.port or 1080, kind, proxy.username,
                                       proxy.password, rdns=True, limit=self.limit, ttl_dns_cache=300)
            sess = self._socks[proxy] = self._new_session(connector)
        return sess, {}

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        for sess in self._socks.values():
            if not sess.closed:
                await sess.close()
        self._socks.clear()

    async def generate(self, base_url: str, body: bytes, token: str, kiro_version: str,
                       machine_id: str, api_key_auth: bool = False,
                       proxy: Proxy | None = None, cli: str | None = None) -> aiohttp.ClientResponse:
        """POST the body; return the response once its status line and headers arrived. `cli`
        ("legacy" | "runtime", the host's kind): as kiro-cli does, in the target form."""
        host = urlsplit(base_url).netloc
        headers = chat_headers(token, kiro_version, machine_id, host, api_key_auth)
        if cli:
            url = base_url + "/"
            headers = cli_headers(headers, cli)
            body = as_cli_body(body)
        else:
            url = base_url + "/generateAssistantResponse"
        session, options = self.via(proxy)
        try:
            return await session.post(url, data=body, headers=headers, **options)
        except TimeoutError as e:
            raise GatewayError("timeout", "Timed out connecting to Kiro.") from e
        except aiohttp.ClientError as e:
            detail = proxy.redact(str(e)) if proxy else str(e)
            raise GatewayError("upstream", f"Could not reach Kiro: {type(e).__name__}: {detail}") from e


def as_cli_body(body: bytes) -> bytes:
    """The IDE's body as kiro-cli sends it: every message's origin KIRO_CLI.

    The body is built once per request, for the IDE; which identity an attempt presents depends on
    its credential. The origin fields are swapped in the bytes — one copy of the body instead of
    building it again per attempt. Inside a JSON string a quote is always escaped, so this exact
    byte run only ever matches an "origin" key and its value.
    """
    return body.replace(b'"origin":"AI_EDITOR"', b'"origin":"KIRO_CLI"')


async def get_usage_limits(http: KiroHttp, base_url: str, token: str, kiro_version: str, machine_id: str,
                           profile_arn: str | None = None, api_key_auth: bool = False,
                           proxy: Proxy | None = None) -> dict[str, Any]:
    """GET getUsageLimits (docs/kiro-protocol.md, “Usage limits”): the raw answer, or an UpstreamStatus / GatewayError."""
    params = {"origin": "AI_EDITOR", "resourceType": "AGENTIC_REQUEST"}
    if profile_arn:
        params["profileArn"] = profile_arn
    # encoded=True keeps the ARN percent-encoded, as the IDE sends it (yarl would unquote ':' and '/').
    url = yarl.URL(f"{base_url}/getUsageLimits?{urlencode(params, quote_via=quote)}", encoded=True)
    headers = usage_headers(token, kiro_version, machine_id, urlsplit(base_url).netloc, api_key_auth)
    session, options = http.via(proxy)
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=30),
                               auto_decompress=True, **options) as resp:
            raw = await resp.read()
            status = resp.status
    except (TimeoutError, aiohttp.ClientError) as e:
        raise GatewayError("upstream", f"Could not reach Kiro for usage limits: {type(e).__name__}") from e
    if status != 200:
        raise upstream_error(status, raw.decode("utf-8", "replace"))
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise GatewayError("upstream", "Kiro's usage-limits answer is not a JSON object.")
    return data


def _reason(body: str) -> tuple[str | None, str]:
    """(reason, message) from a Kiro error body, which may be JSON of several shapes or text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, body.strip()[:500]
    if not isinstance(data, dict):
        return None, body.strip()[:500]
    inner: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else data
    reason = inner.get("reason") or data.get("reason")
    message = inner.get("message") or inner.get("Message") or data.get("message") or ""
    return (str(reason) if reason else None), str(message)[:500]


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's seconds (the delta form Kiro uses), capped at a day; else None."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return min(seconds, 86_400.0) if seconds is not None and seconds > 0 else None


def upstream_error(status: int, body: str, retry_after: float | None = None) -> UpstreamStatus:
    """Map a Kiro error answer to a neutral error (docs/kiro-protocol.md, "Errors and throttling")."""
    err = _classify(status, body)
    if retry_after and err.kind in ("rate_limit", "overloaded"):
        err.retry_after = retry_after
    return err


def _classify(status: int, body: str) -> UpstreamStatus:
    reason, message = _reason(body)
    text = f"{reason or ''} {message} {body[:2000]}"
    low = text.lower()
    if "INSUFFICIENT_MODEL_CAPACITY" in text:  # the model's trouble, not the account's
        return UpstreamStatus("overloaded", "Kiro has no capacity for this model right now "
                              "(INSUFFICIENT_MODEL_CAPACITY); try again shortly or use another model.",
                              529, status, body, "INSUFFICIENT_MODEL_CAPACITY")
    if "high volume of traffic" in low:
        return UpstreamStatus("overloaded", "Kiro is overloaded (a high volume of traffic); try again shortly.",
                              529, status, body, reason or "HIGH_TRAFFIC")
    if "suspicious activity" in low:
        return UpstreamStatus("rate_limit", "Kiro reported suspicious activity on this account and limits it "
                              "for now; the gateway rests the account.", 429, status, body, "SUSPICIOUS_ACTIVITY")
    if "CONTENT_LENGTH_EXCEEDS_THRESHOLD" in text:
        return UpstreamStatus(
            "invalid_request",
            "Context window is full (Kiro: CONTENT_LENGTH_EXCEEDS_THRESHOLD). Reduce the conversation "
            "history, system prompt or tools — e.g. run /compact in Claude Code — and retry.",
            400, status, body, "CONTENT_LENGTH_EXCEEDS_THRESHOLD")
    if "Input is too long" in text:
        return UpstreamStatus(
            "invalid_request",
            "Input is too long for Kiro. Reduce the size of your messages (large pasted files, "
            "images or tool results) and retry.", 400, status, body, reason or "INPUT_TOO_LONG")
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
        named = f" ({reason})" if reason else ""
        return UpstreamStatus("rate_limit", f"Kiro is rate limiting this account{named}: "
                              f"{message or 'Too many requests'}", 429, status, body, reason)
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
