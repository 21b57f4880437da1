"""The fake Kiro's MCP endpoint: `POST /mcp` on both API hosts, serving the `web_search` tool.

docs/kiro-protocol.md ("Server tools, MCP and web search") describes the call. The fake is as
strict as the chat endpoint: the same bearer checks and account states (an expired or unknown
token, a suspended account, `tokentype: API_KEY` for key accounts, an exhausted quota), and each
host's profile-ARN rule, read where that host reads it: the branded host (`/runtime/mcp`) from the
body's root `profileArn`, the legacy host from the `x-amzn-kiro-profile-arn` header. The JSON-RPC
envelope is checked too (version, id format, method, tool, arguments), each fault answered with a
JSON-RPC error.

Results are deterministic: the same query always gives the same results. Three words in a query
steer the fake, for tests: `fake:empty` (no results), `fake:error` (the tool reports an error,
`isError: true`) and `fake:throttle` (a 429 throttling answer, as chat gives one).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .accounts import QUOTA
from .hosts import arn_verdict
from .replies import error_reply
from .wire import json_response as _json

if TYPE_CHECKING:
    from .state import FakeState

__all__ = ["McpRoutes", "search_results", "rpc_answer", "ID_FORMAT", "RESULTS_PER_QUERY"]

# web_search_tooluse_{22 letters or digits}_{unix time in ms}_{8 lowercase letters or digits}
ID_FORMAT = re.compile(r"^web_search_tooluse_[A-Za-z0-9]{22}_\d{13}_[a-z0-9]{8}$")
RESULTS_PER_QUERY = 5
MAX_QUERY = 2000
_DOMAINS = ("docs.example.org", "news.example.com", "wiki.example.net", "blog.example.dev", "forum.example.io")
_ARN_HEADER = "x-amzn-kiro-profile-arn"
THROTTLED = error_reply(429).body


def _rpc_error(rid: Any, code: int, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def search_results(query: str) -> dict:
    """What the fake's search finds for `query`: the parsed form of the tool's text."""
    if "fake:empty" in query:
        return {"results": [], "totalResults": 0, "query": query}
    digest = hashlib.sha256(query.encode()).hexdigest()
    words = re.findall(r"[A-Za-z0-9]+", query.lower())[:6] or ["search"]
    slug = "-".join(words)
    topic = " ".join(words).title()
    results = []
    for i in range(RESULTS_PER_QUERY):
        domain = _DOMAINS[(int(digest[i * 2:i * 2 + 2], 16) + i) % len(_DOMAINS)]
        results.append({
            "title": f"{topic} — result {i + 1}",
            "url": f"https://{domain}/{slug}/{i + 1}",
            "snippet": f"Result {i + 1} about {query}: a deterministic page of the fake Kiro's web search.",
            "publishedDate": 1_700_000_000_000 + int(digest[i * 8:i * 8 + 8], 16) * 10,
            "id": f"{digest[:16]}-{i + 1}",
            "domain": domain,
            "maxVerbatimWordLimit": 25,
            "publicDomain": False,
        })
    return {"results": results, "totalResults": len(results), "query": query}


def rpc_answer(body: Any) -> tuple[dict, str | None]:
    """(the JSON-RPC answer, the query searched or None) for a request body already parsed."""
    if not isinstance(body, dict):
        return _rpc_error(None, -32600, "Invalid Request: expected a JSON-RPC 2.0 request object."), None
    rid = body.get("id")
    if body.get("jsonrpc") != "2.0":
        return _rpc_error(rid, -32600, "Invalid Request: jsonrpc must be \"2.0\"."), None
    if not isinstance(rid, str) or not ID_FORMAT.match(rid):
        return _rpc_error(rid, -32600, "Invalid Request: malformed id."), None
    if body.get("method") != "tools/call":
        return _rpc_error(rid, -32601, f"Method not found: {body.get('method')!r}."), None
    params = body.get("params")
    if not isinstance(params, dict):
        return _rpc_error(rid, -32602, "Invalid params: params must be an object."), None
    if params.get("name") != "web_search":
        return _rpc_error(rid, -32602, f"Unknown tool: {params.get('name')!r}."), None
    args = params.get("arguments")
    query = args.get("query") if isinstance(args, dict) else None
    if not isinstance(query, str) or not query.strip():
        return _rpc_error(rid, -32602, "Invalid params: arguments.query is required."), None
    if len(query) > MAX_QUERY:
        return _rpc_error(rid, -32602, f"Invalid params: the query is longer than {MAX_QUERY} characters."), query
    if "fake:error" in query:
        text, failed = "Web search failed: the search backend is unavailable.", True
    else:
        text, failed = orjson.dumps(search_results(query)).decode(), False
    return {"jsonrpc": "2.0", "id": rid,
            "result": {"content": [{"type": "text", "text": text}], "isError": failed}}, query


class McpRoutes:
    """A mixin of the server's request handler (which has `_fail`, counting and recording a
    refusal as chat's are): `POST /mcp` and `POST /runtime/mcp`."""

    state: FakeState
    _fail: Callable[[Any, int, bytes, str], web.Response]

    async def mcp(self, request: web.BaseRequest, host: str = "legacy") -> web.Response:
        st = self.state
        raw = await request.content.read()
        token, acct, auth_error, rec = st.received(request, raw, host)
        if auth_error:
            return self._fail(rec, auth_error[0], auth_error[1], "auth")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._fail(rec, 400, orjson.dumps(_rpc_error(None, -32700, "Parse error.")), "rpc")
        if rec is not None and st.settings.record_bodies:
            rec["body"] = body
        arn = body.get("profileArn") if host == "runtime" and isinstance(body, dict) else request.headers.get(_ARN_HEADER)
        refused = arn_verdict(host, acct, arn if isinstance(arn, str) else None)
        if refused is not None:
            return self._fail(rec, refused[0], refused[1], "profile")
        if acct is not None and acct["quota_exhausted"]:
            return self._fail(rec, 402, QUOTA, "quota")
        answer, query = rpc_answer(body)
        if query is not None and "fake:throttle" in query:
            return self._fail(rec, 429, THROTTLED, "throttled")
        if rec is not None:
            rec["search"] = query
            rec["rpc_error"] = answer.get("error")
        verdict = "ok" if "result" in answer else "rpc"
        st.statuses[200] += 1
        if rec is not None:
            rec["status"], rec["verdict"] = 200, verdict
        return _json(200, answer)
