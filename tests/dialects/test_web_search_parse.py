"""Each dialect keeps a request's web search tool as the conversation's `web_search` (never among
its tools), with the options it has, and refuses malformed options naming the field."""

from __future__ import annotations

import pytest

from kiro_gateway.core.conversation import GatewayError, WebSearchTool
from kiro_gateway.dialects.anthropic.parse import parse_request as anthropic
from kiro_gateway.dialects.gemini.parse import parse_request as gemini
from kiro_gateway.dialects.openai_chat.parse import parse_request as chat
from kiro_gateway.dialects.openai_responses.parse import parse_request as responses

FN = {"name": "f", "input_schema": {"type": "object"}}
USER = [{"role": "user", "content": "hi"}]


def a(*tools, **kw):
    return anthropic({"model": "m", "max_tokens": 10, "messages": USER, "tools": list(tools), **kw})


def c(**kw):
    return chat({"model": "m", "messages": USER, **kw})


def r(*tools, **kw):
    return responses({"model": "m", "input": "hi", "tools": list(tools), **kw})


def g(*tools):
    return gemini({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "tools": list(tools)}, "gemini-2.5-pro")


@pytest.mark.parametrize("conv,search,names", [
    (lambda: a(FN, {"type": "web_search_20250305", "name": "web_search", "max_uses": 3,
                    "allowed_domains": ["python.org"]}), WebSearchTool(3, ["python.org"], []), ["f"]),
    (lambda: a({"type": "web_search_20260209", "name": "web_search", "blocked_domains": ["x.example"]}),
     WebSearchTool(None, [], ["x.example"]), []),
    (lambda: a(FN, {"type": "web_fetch_20250910", "name": "web_fetch"}), None, ["f"]),
    (lambda: c(web_search_options={"search_context_size": "low"}), WebSearchTool(), []),
    (lambda: c(tools=[{"type": "web_search"}]), WebSearchTool(), []),
    (lambda: c(), None, []),
    (lambda: r({"type": "web_search", "external_web_access": True}), WebSearchTool(), []),
    (lambda: r({"type": "web_search_preview"}, {"type": "function", "name": "f"}), WebSearchTool(), ["f"]),
    (lambda: r({"type": "web_search", "filters": {"allowed_domains": ["a.example"]}}),
     WebSearchTool(None, ["a.example"], []), []),
    (lambda: r({"type": "file_search"}), None, []),
    (lambda: g({"googleSearch": {}}), WebSearchTool(), []),
    (lambda: g({"google_search": {"exclude_domains": ["b.example"]}}), WebSearchTool(None, [], ["b.example"]), []),
    (lambda: g({"googleSearchRetrieval": {}}, {"functionDeclarations": [{"name": "f"}]}), WebSearchTool(), ["f"]),
    (lambda: g({"codeExecution": {}}), None, []),
])
def test_the_search_is_kept_apart_from_the_tools(conv, search, names):
    parsed = conv()
    assert parsed.web_search == search
    assert [t.name for t in parsed.tools] == names


def test_a_forced_responses_search_names_the_gateways_function():
    choice = r({"type": "web_search"}, tool_choice={"type": "web_search"}).tool_choice
    assert (choice.mode, choice.name) == ("tool", "web_search")


@pytest.mark.parametrize("conv,field", [
    (lambda: a({"type": "web_search_20250305", "name": "web_search", "max_uses": 0}), "tools.0.max_uses"),
    (lambda: a({"type": "web_search_20250305", "name": "web_search", "allowed_domains": "x"}), "tools.0.allowed_domains"),
    (lambda: a({"type": "web_search_20250305", "name": "web_search", "allowed_domains": ["a"],
                "blocked_domains": ["b"]}), "tools.0"),
    (lambda: c(web_search_options="yes"), "web_search_options"),
    (lambda: r({"type": "web_search", "filters": []}), "tools[0].filters"),
    (lambda: r({"type": "web_search", "filters": {"allowed_domains": [1]}}), "tools[0].filters.allowed_domains"),
    (lambda: g({"googleSearch": []}), "tools[0].googleSearch"),
    (lambda: g({"googleSearch": {"excludeDomains": [2]}}), "tools[0].googleSearch.excludeDomains"),
])
def test_malformed_options_are_refused(conv, field):
    with pytest.raises(GatewayError) as caught:
        conv()
    assert caught.value.status == 400 and field in caught.value.message
