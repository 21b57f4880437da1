"""The MCP web_search codec (kiro/mcp.py): the call as the fake checks it, and every way an answer
can fail to hold results."""

from __future__ import annotations

import orjson
import pytest

from kiro_gateway.fake.mcp import ID_FORMAT, rpc_answer, search_results
from kiro_gateway.kiro.identity import chat_headers, mcp_headers
from kiro_gateway.kiro.mcp import SearchFailed, mcp_body, parse_answer, request_id

ARN = "arn:aws:codewhisperer:us-east-1:111122223333:profile/EXAMPLE"


def test_the_call_is_one_the_fake_accepts():
    rid = request_id()
    assert ID_FORMAT.match(rid) and rid != request_id()
    body = orjson.loads(mcp_body("kiro news", rid, ARN))
    assert body == {"id": rid, "jsonrpc": "2.0", "method": "tools/call", "profileArn": ARN,
                    "params": {"name": "web_search", "arguments": {"query": "kiro news"}}}
    assert "profileArn" not in orjson.loads(mcp_body("q", rid, None))
    answer, query = rpc_answer(body)
    assert query == "kiro news"
    hits = parse_answer(orjson.dumps(answer))
    expected = search_results("kiro news")["results"]
    assert [(h.title, h.url, h.snippet) for h in hits] == [(e["title"], e["url"], e["snippet"]) for e in expected]
    assert all(h.published and h.published.endswith("Z") for h in hits)


def test_headers_are_chats_without_optout_and_agent_mode():
    mid = "a" * 64
    chat = chat_headers("tok", "0.11.107", mid, "q.us-east-1.amazonaws.com")
    mcp = mcp_headers("tok", "0.11.107", mid, "q.us-east-1.amazonaws.com", profile_arn=ARN)
    assert set(chat) - set(mcp) == {"x-amzn-codewhisperer-optout", "x-amzn-kiro-agent-mode"}
    assert set(mcp) - set(chat) == {"x-amzn-kiro-profile-arn"} and mcp["x-amzn-kiro-profile-arn"] == ARN
    key = mcp_headers("ksk_x", "0.11.107", mid, "h", api_key_auth=True, cli=True)
    assert key["tokentype"] == "API_KEY" and "KiroCLI-" in key["user-agent"] and "x-amzn-kiro-profile-arn" not in key


def _answer(result=None, error=None) -> bytes:
    out = {"jsonrpc": "2.0", "id": "x"}
    out.update({"error": error} if error is not None else {"result": result})
    return orjson.dumps(out)


def _text(text) -> dict:
    return {"content": [{"type": "text", "text": text}], "isError": False}


@pytest.mark.parametrize("raw,words", [
    (b"<html>", "not JSON"),
    (b"[1]", "not a JSON-RPC"),
    (_answer(error={"code": -32602, "message": "Unknown tool"}), "Unknown tool"),
    (_answer(result={"content": []}), "no result text"),
    (_answer(result={"content": [{"type": "text", "text": "boom"}], "isError": True}), "failed: boom"),
    (_answer(result=_text("not json")), "not JSON"),
    (_answer(result=_text('{"total": 1}')), "no list"),
])
def test_answers_without_results(raw, words):
    with pytest.raises(SearchFailed) as caught:
        parse_answer(raw)
    assert words in caught.value.message and caught.value.kind == "upstream"


def test_odd_entries_are_left_out_and_dates_read_both_ways():
    entries = [{"url": "ftp://x/1", "title": "no"}, "junk", {"title": "t"},
               {"url": "https://a.example/1", "publishedDate": "2025-04-30"},
               {"url": "https://b.example/2", "title": "B", "snippet": 7, "publishedDate": True}]
    hits = parse_answer(_answer(result=_text(orjson.dumps({"results": entries}).decode())))
    assert [(h.title, h.url, h.snippet, h.published) for h in hits] == [
        ("https://a.example/1", "https://a.example/1", "", "2025-04-30"), ("B", "https://b.example/2", "", None)]
