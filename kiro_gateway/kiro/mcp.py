"""Kiro's MCP endpoint, for its `web_search` tool: the JSON-RPC call and its answer
(docs/kiro-protocol.md, “Server tools, MCP and web search”).

`POST {host}/mcp` on the host that serves the account's chat. The branded host wants the profile
ARN at the body's root (`profileArn`); the legacy host takes it as the `x-amzn-kiro-profile-arn`
header. Both are sent whenever the account has an ARN. An HTTP error is mapped as chat's are
(`upstream_error`); a JSON-RPC error or a tool error (`isError`) is a `SearchFailed`: the search's
trouble, not the account's.
"""

from __future__ import annotations

import string
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from ..core.conversation import GatewayError, SearchHit
from ..util.ids import random_chars
from .client import KiroHttp, Proxy, upstream_error
from .identity import mcp_headers

__all__ = ["web_search", "mcp_body", "parse_answer", "request_id", "SearchFailed", "MAX_QUERY"]

MAX_QUERY = 1000  # characters; a longer query is the caller's to shorten or refuse
TIMEOUT = 30.0
_ALNUM = string.ascii_letters + string.digits
_LOWER = string.ascii_lowercase + string.digits


class SearchFailed(GatewayError):
    """Kiro answered the call, but the search itself failed (a JSON-RPC or tool error)."""

    def __init__(self, message: str) -> None:
        super().__init__("upstream", message)


def request_id() -> str:
    """A call's id as Kiro's own clients make it: web_search_tooluse_{22}_{unix ms}_{8}."""
    return f"web_search_tooluse_{random_chars(22, _ALNUM)}_{int(time.time() * 1000)}_{random_chars(8, _LOWER)}"


def mcp_body(query: str, rid: str, profile_arn: str | None) -> bytes:
    body: dict[str, Any] = {"id": rid, "jsonrpc": "2.0", "method": "tools/call",
                            "params": {"name": "web_search", "arguments": {"query": query}}}
    if profile_arn:
        body["profileArn"] = profile_arn
    return orjson.dumps(body)


def _published(value: object) -> str | None:
    """publishedDate (epoch milliseconds, or already a date string) → ISO 8601 in UTC."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and value > 0:
        try:
            return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):
            return None
    return value if isinstance(value, str) and value else None


def _hit(entry: object) -> SearchHit | None:
    if not isinstance(entry, dict):
        return None
    url = entry.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return None
    title = entry.get("title")
    snippet = entry.get("snippet")
    return SearchHit(title if isinstance(title, str) and title else url, url,
                     snippet if isinstance(snippet, str) else "", _published(entry.get("publishedDate")))


def parse_answer(raw: bytes) -> list[SearchHit]:
    """The results of a `tools/call` answer. Raises SearchFailed when there are none to be had."""
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SearchFailed("Kiro's web search answer is not JSON.") from None
    if not isinstance(answer, dict):
        raise SearchFailed("Kiro's web search answer is not a JSON-RPC response.")
    error = answer.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        raise SearchFailed(f"Kiro's web search refused the call: {str(message)[:300]}")
    result = answer.get("result")
    content = result.get("content") if isinstance(result, dict) else None
    texts = [c.get("text") for c in content if isinstance(c, dict) and c.get("type") == "text"] \
        if isinstance(content, list) else []
    text = next((t for t in texts if isinstance(t, str)), None)
    if not isinstance(result, dict) or text is None:
        raise SearchFailed("Kiro's web search answer has no result text.")
    if result.get("isError"):
        raise SearchFailed(f"Kiro's web search failed: {text[:300]}")
    try:
        found = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise SearchFailed("Kiro's web search results are not JSON.") from None
    entries = found.get("results") if isinstance(found, dict) else None
    if not isinstance(entries, list):
        raise SearchFailed("Kiro's web search results have no list of results.")
    return [h for h in map(_hit, entries) if h is not None]


async def web_search(http: KiroHttp, base_url: str, query: str, token: str, kiro_version: str, machine_id: str,
                     profile_arn: str | None = None, api_key_auth: bool = False, proxy: Proxy | None = None,
                     cli: bool = False) -> list[SearchHit]:
    """One `web_search` call. Raises UpstreamStatus (an HTTP error), SearchFailed, or GatewayError
    (Kiro could not be reached)."""
    headers = mcp_headers(token, kiro_version, machine_id, urlsplit(base_url).netloc, api_key_auth, profile_arn, cli)
    body = mcp_body(query, request_id(), profile_arn)
    session, options = http.via(proxy)
    try:
        async with session.post(base_url + "/mcp", data=body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=TIMEOUT), auto_decompress=True,
                                **options) as resp:
            raw, status = await resp.read(), resp.status
    except TimeoutError as e:
        raise GatewayError("timeout", f"Kiro's web search did not answer within {TIMEOUT:g} s.") from e
    except aiohttp.ClientError as e:
        detail = proxy.redact(str(e)) if proxy else str(e)
        raise GatewayError("upstream", f"Could not reach Kiro for a web search: {type(e).__name__}: {detail}") from e
    if status != 200:
        text = raw.decode("utf-8", "replace")
        if b'"jsonrpc"' not in raw:
            raise upstream_error(status, text)
        parse_answer(raw)  # a JSON-RPC error sent with an HTTP error status
        raise upstream_error(status, text)
    return parse_answer(raw)
