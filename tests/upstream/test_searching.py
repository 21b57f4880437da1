"""The pieces of web search serving (upstream/searching.py, upstream/search.py): the query of a
search-only request, the results as text, the client's domain lists, keep-alives while waiting."""

from __future__ import annotations

import asyncio

from kiro_gateway.core.conversation import (Conversation, ImagePart, Message, Ping, SearchHit, TextPart,
                                            ToolResultPart, WebSearchTool)
from kiro_gateway.kiro.mcp import MAX_QUERY
from kiro_gateway.upstream.search import filter_domains
from kiro_gateway.upstream.searching import _pinging, listing, query_of


def conv(*messages: Message) -> Conversation:
    return Conversation(model="m", messages=list(messages))


def test_the_query_is_the_last_user_text_without_claude_codes_words():
    assert query_of(conv(Message("user", [TextPart("Perform a web search for the query: rust  async\n")]))) \
        == "rust async"
    assert query_of(conv(Message("user", [TextPart("old")]), Message("assistant", [TextPart("x")]),
                         Message("user", [TextPart("new"), ImagePart("image/png", "AAAA")]))) == "new"
    assert query_of(conv(Message("user", [ToolResultPart("t", "result")]))) == ""
    long = query_of(conv(Message("user", [TextPart("word " * 400)])))
    assert len(long) <= MAX_QUERY and long.endswith("word")


def test_listing():
    hits = [SearchHit("A [x]", "https://a.example/1", "one\n two", "2025-04-30T10:00:00Z"),
            SearchHit("B", "https://b.example/2")]
    lead, entries = listing("q", hits, None)
    assert lead == 'Web search results for "q":\n\n'
    assert entries == ["1. [A \\[x\\]](https://a.example/1) (2025-04-30)\n   one two", "2. [B](https://b.example/2)"]
    assert listing("q", [], None) == ('The web search for "q" found nothing.\n', [])
    assert listing("q", hits, "unavailable") == ('The web search for "q" failed (unavailable).\n', [])


def test_domain_lists():
    hits = [SearchHit(u, u) for u in ("https://docs.python.org/3/", "https://python.org/", "https://evil.example/",
                                      "https://notpython.org/")]
    urls = lambda found: [h.url for h in found]  # noqa: E731
    assert urls(filter_domains(hits, WebSearchTool(allowed_domains=["python.org"]))) == [
        "https://docs.python.org/3/", "https://python.org/"]
    assert urls(filter_domains(hits, WebSearchTool(blocked_domains=[".Evil.example"]))) == [
        "https://docs.python.org/3/", "https://python.org/", "https://notpython.org/"]
    assert filter_domains(hits, WebSearchTool()) == hits


async def test_keepalives_while_waiting():
    task = asyncio.ensure_future(asyncio.sleep(0.25, "done"))
    got = [b async for b in _pinging(task, 0.1)]
    assert got == [[Ping()], [Ping()]] and task.result() == "done"
