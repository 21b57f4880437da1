"""Anthropic's web search server tool, both ways: the `web_search_*` tool of a request, the blocks
a reply shows a search in (`server_tool_use`, `web_search_tool_result` and text `citations`),
and those blocks when a client sends them back in its history.

A result's `encrypted_content` and a citation's `encrypted_index` are opaque to clients. Ours
carry the result's snippet and URL (base64, behind a version prefix), so that results sent back
in the history reach the model as readable text again.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson

from ...core.conversation import GatewayError, SearchError, SearchHit, WebSearchTool

__all__ = ["search_tool", "tool_use_id", "server_tool_use", "result_block", "citation", "echoed_results",
           "server_tool_usage", "echoed_use"]

_PREFIX = "kgws1:"
_CITED_CHARS = 150  # Anthropic quotes at most this much of a result in a citation


def search_tool(t: dict, where: str) -> WebSearchTool:
    """A `web_search_*` tool's options."""
    max_uses = t.get("max_uses")
    if max_uses is not None and (not isinstance(max_uses, int) or isinstance(max_uses, bool) or max_uses < 1):
        raise GatewayError("invalid_request", f"{where}.max_uses: Input should be a positive integer")
    lists = []
    for key in ("allowed_domains", "blocked_domains"):
        value = t.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(d, str) for d in value)):
            raise GatewayError("invalid_request", f"{where}.{key}: Input should be a list of strings")
        lists.append(list(value or []))
    if lists[0] and lists[1]:
        raise GatewayError("invalid_request", f"{where}: allowed_domains and blocked_domains cannot both be set")
    return WebSearchTool(max_uses, lists[0], lists[1])


def tool_use_id(search_id: str) -> str:
    return "srvtoolu_" + search_id


def server_tool_use(search_id: str, query: str) -> dict:
    return {"type": "server_tool_use", "id": tool_use_id(search_id), "name": "web_search", "input": {"query": query}}


def _opaque(text: str) -> str:
    return _PREFIX + base64.b64encode(text.encode()).decode()


def _page_age(published: str | None) -> str | None:
    if not published:
        return None
    try:
        day = datetime.strptime(published[:10], "%Y-%m-%d")
    except ValueError:
        return published
    return f"{day:%B} {day.day}, {day.year}"


def result_block(search_id: str, hits: list[SearchHit], error: SearchError | None) -> dict:
    content: Any
    if error is not None:
        content = {"type": "web_search_tool_result_error", "error_code": error}
    else:
        content = [{"type": "web_search_result", "title": h.title, "url": h.url,
                    "encrypted_content": _opaque(h.snippet), "page_age": _page_age(h.published)} for h in hits]
    return {"type": "web_search_tool_result", "tool_use_id": tool_use_id(search_id), "content": content}


def citation(hit: SearchHit) -> dict:
    return {"type": "web_search_result_location", "url": hit.url, "title": hit.title,
            "cited_text": hit.snippet[:_CITED_CHARS], "encrypted_index": _opaque(hit.url)}


def server_tool_usage(searches: int) -> dict:
    return {"server_tool_use": {"web_search_requests": searches, "web_fetch_requests": 0}} if searches else {}


def _readable(opaque: Any) -> str:
    if not isinstance(opaque, str) or not opaque.startswith(_PREFIX):
        return ""  # someone else's (Anthropic's own): nothing to recover
    try:
        return base64.b64decode(opaque[len(_PREFIX):], validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def echoed_results(block: dict) -> str:
    """A `web_search_tool_result` from the history, as text for the model."""
    content = block.get("content")
    if not isinstance(content, list):
        code = content.get("error_code") if isinstance(content, dict) else None
        return f"[web search failed: {code or 'unknown error'}]"
    lines = ["[web search results]"]
    for r in content:
        if not isinstance(r, dict):
            continue
        lines.append(f"- {r.get('title') or ''} <{r.get('url') or ''}>")
        snippet = _readable(r.get("encrypted_content"))
        if snippet:
            lines.append(f"  {snippet}")
    return "\n".join(lines)[:20000]


def echoed_use(block: dict) -> str:
    return f"[{block.get('name')}: {orjson.dumps(block.get('input')).decode()}]"
