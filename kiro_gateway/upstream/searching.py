"""Requests that declare a web search, answered through Kiro's MCP `web_search`
(docs/kiro-protocol.md, “Server tools, MCP and web search”).

- **Search only.** When every tool the request declares is a web search (Claude Code's WebSearch
  and Gemini CLI's google_web_search send such a request, holding only the query), the user's last
  message is the query: the gateway searches and answers with the results themselves, one cited
  entry each (`SearchAnswer`). No model is asked.
- **Search among other tools.** The model is offered a `web_search` function. When it calls only
  that, the gateway runs the search, reports it to the client (the dialect's own search blocks or
  items), adds the call and its results to the conversation and asks the model again, until it
  answers (`SearchLoop`; at most `max_uses` searches, else `MAX_SEARCHES`). A turn that also calls
  the client's tools ends there, the searches reported, as on the client's own API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson

from ..config import Settings
from ..core.conversation import (
    CitedText,
    Conversation,
    ErrorEvent,
    GatewayError,
    Message,
    Part,
    Ping,
    ReplyEvent,
    SearchError,
    SearchHit,
    Stop,
    TextDelta,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    Usage,
    WebSearchCall,
    WebSearchResults,
)
from ..core.reply import collect
from ..core.tokencount import estimate
from ..kiro.mcp import MAX_QUERY, SearchFailed
from ..kiro.request import KiroRequest
from ..util.ids import random_hex
from .search import Searcher, filter_domains
from .stream import ReplyStream

__all__ = ["Searching", "SearchAnswer", "SearchLoop", "SEARCH_TOOL", "MAX_SEARCHES", "query_of", "listing"]

SEARCH_TOOL = "web_search"
MAX_SEARCHES = 5  # searches in one reply when the client set no max_uses
SEARCH_SPEC = Tool(SEARCH_TOOL, (
    "Search the web for current information. Returns the top results, each with its title, URL, "
    "publication date and a snippet. Use it for facts you do not know or that may have changed, "
    "and cite the sources you use as markdown links."),
    {"type": "object", "properties": {"query": {"type": "string", "description": "The search query."}},
     "required": ["query"]})
# Claude Code's WebSearch asks its search-only request in these words, the query after them.
_ASKED = re.compile(r"^\s*perform a web search for the query:\s*", re.I)
T = TypeVar("T")


def query_of(conv: Conversation) -> str:
    """The query of a search-only request: the last user message's text, at most MAX_QUERY
    characters (cut at a word)."""
    last = next((m for m in reversed(conv.messages) if m.role == "user"), None)
    text = " ".join(p.text for p in last.parts if isinstance(p, TextPart)) if last else ""
    query = " ".join(_ASKED.sub("", text).split())
    if len(query) > MAX_QUERY:
        query = query[:MAX_QUERY].rsplit(" ", 1)[0]
    return query


def _md(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


def listing(query: str, hits: list[SearchHit], error: SearchError | None) -> tuple[str, list[str]]:
    """The results as text: a lead line, then one markdown entry per result (to be joined by
    newlines: a citation marker a client puts after an entry then ends its last line)."""
    if error is not None:
        return f'The web search for "{query}" failed ({error}).\n', []
    if not hits:
        return f'The web search for "{query}" found nothing.\n', []
    entries = []
    for i, h in enumerate(hits, 1):
        date = f" ({h.published[:10]})" if h.published else ""
        snippet = f"\n   {' '.join(h.snippet.split())}" if h.snippet else ""
        entries.append(f"{i}. [{_md(h.title)}]({h.url}){date}{snippet}")
    return f'Web search results for "{query}":\n\n', entries


def _results_for_model(query: str, hits: list[SearchHit], error: SearchError | None) -> str:
    lead, entries = listing(query, hits, error)
    if error == "max_uses_exceeded":
        return lead + "No more web searches are allowed in this reply: answer with what you have."
    return lead + "\n".join(entries) + ("\n\nCite the sources you use as markdown links." if entries else "")


class Tally:
    """What the request log reads of a reply (observe/record.py): its tokens and credits."""

    __slots__ = ("out_tokens", "context_pct", "context_window", "estimated_input", "credits", "finished",
                 "errored")

    def __init__(self, estimated_input: int) -> None:
        self.out_tokens = 0
        self.context_pct: float | None = None
        self.context_window = 0
        self.estimated_input = estimated_input
        self.credits: float | None = None
        self.finished = False
        self.errored = False

    def add(self, usage: Usage) -> None:
        self.out_tokens += usage.output_tokens
        if usage.input_tokens:
            self.estimated_input = usage.input_tokens  # the last round's: the whole context
        if usage.credits is not None:
            self.credits = (self.credits or 0.0) + usage.credits


async def _pinging(task: asyncio.Future[T], interval: float) -> AsyncIterator[list[ReplyEvent]]:
    """Keep-alives while `task` runs (the client's stream must not go silent)."""
    while not task.done():
        done, _ = await asyncio.wait({task}, timeout=interval)
        if not done:
            yield [Ping()]


class SearchAnswer:
    """A search-only request's reply: the search and its results, one batch."""

    served_model = SEARCH_TOOL  # no model answered: Kiro's web_search did

    def __init__(self, request: KiroRequest, events: list[ReplyEvent], input_estimate: int) -> None:
        self.request = request  # the chat request it stands for (never sent)
        self.events = events
        self.input_estimate = input_estimate
        self.mapper = Tally(input_estimate)
        usage = next(e for e in events if type(e) is Usage)
        self.mapper.add(usage)
        self.mapper.finished = True

    def __aiter__(self) -> AsyncIterator[list[ReplyEvent]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[list[ReplyEvent]]:
        yield list(self.events)

    async def collect(self) -> list[ReplyEvent]:
        return list(self.events)


class SearchLoop:
    """A reply in rounds: the model's, then the searches it asked for, then the model's again."""

    def __init__(self, searching: Searching, conv: Conversation, first: ReplyStream, session: str, cap: int) -> None:
        self.searching = searching
        self.conv = conv
        self.reply = first
        self.session = session
        self.cap = cap
        self.input_estimate = first.input_estimate
        self.served_model = first.served_model
        self.request = first.request  # the first round's, as the client's request was sent
        self.mapper = Tally(first.input_estimate)
        self.searches = 0

    def __aiter__(self) -> AsyncIterator[list[ReplyEvent]]:
        return self._rounds()

    async def collect(self) -> list[ReplyEvent]:
        out: list[ReplyEvent] = []
        async for batch in self:
            out.extend(e for e in batch if not isinstance(e, Ping))
        return out

    async def _rounds(self) -> AsyncIterator[list[ReplyEvent]]:
        try:
            while True:
                said: list[ReplyEvent] = []  # the model's output this round, for the history
                calls: dict[str, list[str]] = {}  # its web_search calls: Kiro's id → argument fragments
                theirs = False  # it also called one of the client's tools
                stop = Stop("end_turn")
                async for batch in self.reply:
                    out: list[ReplyEvent] = []
                    for ev in batch:
                        if type(ev) is ToolCallStart and ev.name == SEARCH_TOOL:
                            calls[ev.id] = []
                        elif type(ev) is ToolCallDelta and ev.id in calls:
                            calls[ev.id].append(ev.arguments)
                        elif type(ev) is ToolCallEnd and ev.id in calls:
                            pass
                        elif type(ev) is Usage:
                            self.mapper.add(ev)
                        elif type(ev) is Stop:
                            stop = ev
                        elif type(ev) is ErrorEvent:
                            self.mapper.errored = True
                            yield out + [ev]
                            return
                        else:
                            theirs = theirs or type(ev) is ToolCallStart
                            if type(ev) is not Ping:
                                said.append(ev)
                            out.append(ev)
                    if out:
                        yield out
                if not calls or stop.reason != "tool_use":  # answered (or a call was cut off: dropped)
                    break
                results: list[tuple[str, str, list[SearchHit], SearchError | None]] = []
                for kiro_id, fragments in calls.items():
                    sid = random_hex(24)
                    query = _query_arg("".join(fragments))
                    yield [WebSearchCall(sid, query)]
                    task = asyncio.ensure_future(self._search(query))
                    try:
                        async for keepalive in _pinging(task, self.searching.settings.ping_interval):
                            yield keepalive
                    finally:
                        task.cancel()
                    hits, error = task.result()
                    yield [WebSearchResults(sid, query, hits, error)]
                    results.append((kiro_id, query, hits, error))
                if theirs:  # the client runs its own calls: the turn ends with them
                    stop = Stop("tool_use")
                    break
                self.conv = self._continued(said, results)
                opening = asyncio.ensure_future(self.searching.open_chat(self.conv))
                try:
                    async for keepalive in _pinging(opening, self.searching.settings.ping_interval):
                        yield keepalive
                finally:
                    if not opening.done():  # the client left: the reply, once open, is let go
                        opening.add_done_callback(_close_opened)
                try:
                    self.reply = opening.result()
                except GatewayError as e:
                    self.mapper.errored = True
                    yield [ErrorEvent(e.kind, e.message)]
                    return
            m = self.mapper
            m.finished = True
            yield [Usage(m.estimated_input, m.out_tokens, m.credits, self.searches), stop]
        finally:
            self.reply.close()

    async def _search(self, query: str) -> tuple[list[SearchHit], SearchError | None]:
        """The results, or why there are none: a failure here is the model's to work around."""
        if not query.strip():
            return [], "invalid_tool_input"
        if len(query) > MAX_QUERY:
            return [], "query_too_long"
        if self.searches >= self.cap:
            return [], "max_uses_exceeded"
        self.searches += 1
        try:
            hits = await self.searching.searcher.search(query, self.reply.request.model.kiro_id, self.session)
        except SearchFailed:
            return [], "unavailable"
        except GatewayError as e:
            return [], "too_many_requests" if e.kind == "rate_limit" else "unavailable"
        tool = self.conv.web_search
        return (filter_domains(hits, tool) if tool is not None else hits), None

    def _continued(self, said: list[ReplyEvent],
                   results: list[tuple[str, str, list[SearchHit], SearchError | None]]) -> Conversation:
        """The conversation with the model's turn (its text, thinking and searches) and their results."""
        turn: list[Part] = []
        for b in collect(said, 0).blocks:
            if b.kind == "thinking":
                turn.append(ThinkingPart(b.text, b.signature or None))
            elif b.kind == "text" and b.text:
                turn.append(TextPart(b.text))
        turn += [ToolCallPart(kiro_id, SEARCH_TOOL, {"query": query}) for kiro_id, query, _, _ in results]
        answers: list[Part] = [ToolResultPart(kiro_id, _results_for_model(query, hits, error), error is not None)
                               for kiro_id, query, hits, error in results]
        choice = self.conv.tool_choice
        if self.searches >= self.cap:
            choice = ToolChoice("none")  # the last round: an answer, not another search
        elif choice.mode == "tool" and choice.name == SEARCH_TOOL:
            choice = ToolChoice()  # a forced search was made: the model chooses now
        messages = [*self.conv.messages, Message("assistant", turn), Message("user", answers)]
        return dataclasses.replace(self.conv, messages=messages, tool_choice=choice)


def _close_opened(task: asyncio.Future[ReplyStream]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()


def _query_arg(arguments: str) -> str:
    try:
        value: Any = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return ""
    query = value.get("query") if isinstance(value, dict) else None
    return query.strip() if isinstance(query, str) else ""


Reply = ReplyStream | SearchAnswer | SearchLoop


class Searching:
    """Serves a conversation that declares a web search (`webSearch: on`)."""

    def __init__(self, settings: Settings, searcher: Searcher, prepare: Callable[[Conversation], KiroRequest],
                 open_chat: Callable[[Conversation], Awaitable[ReplyStream]]) -> None:
        self.settings = settings
        self.searcher = searcher
        self.prepare = prepare
        self.open_chat = open_chat

    async def open(self, conv: Conversation, session: str) -> Reply:
        tool = conv.web_search
        assert tool is not None
        if not conv.tools:
            return await self._answer(conv, session)
        if any(t.name == SEARCH_TOOL for t in conv.tools):
            return await self.open_chat(conv)  # the client's own web_search function: the server tool is left out
        cap = tool.max_uses if tool.max_uses else MAX_SEARCHES
        searching = dataclasses.replace(conv, tools=[*conv.tools, SEARCH_SPEC])
        return SearchLoop(self, searching, await self.open_chat(searching), session, cap)

    async def _answer(self, conv: Conversation, session: str) -> SearchAnswer:
        """Search the user's last message; the results are the answer. An account failure is the
        request's (an HTTP error, before any byte); a failed search is reported in the reply."""
        request = self.prepare(conv)  # an unknown model is refused as chat refuses it
        query = query_of(conv)
        hits: list[SearchHit] = []
        error: SearchError | None = None
        if not query:
            error = "invalid_tool_input"
        else:
            try:
                hits = await self.searcher.search(query, request.model.kiro_id, session)
            except SearchFailed:
                error = "unavailable"
        assert conv.web_search is not None
        hits = filter_domains(hits, conv.web_search)
        sid = random_hex(24)
        lead, entries = listing(query, hits, error)
        events: list[ReplyEvent] = [WebSearchCall(sid, query), WebSearchResults(sid, query, hits, error),
                                    TextDelta(lead)]
        for i, (entry, hit) in enumerate(zip(entries, hits, strict=True)):
            events += [TextDelta("\n"), CitedText(entry, hit)] if i else [CitedText(entry, hit)]
        input_estimate = max(1, request.size // 4)
        request.release()  # built to check the model and size the input; never sent
        out = estimate(lead + "\n".join(entries))
        events += [Usage(input_estimate, out, None, 1 if query else 0), Stop("end_turn")]  # searches Kiro ran
        return SearchAnswer(request, events, input_estimate)
