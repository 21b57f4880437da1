"""A long Claude-Code-shaped session past the model's window, turn by turn through the official SDKs.

60 turns of tool calls and ~16 KB results after a 12 KB system prompt, on a 200k-token model:
with `overflowPolicy: trim` every turn is answered and every Kiro request passes the strict fake
(no orphaned tool calls or results), the answer says how much was left out (a header and the
request log); with `error` the client gets its own API's "context full" error. The fake counts
tokens its own way (about 4 bytes each), so some turns also exercise the retry a quarter smaller.
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gt

from gateway_proc import ADMIN_KEY
from support import own_account, start_gateway

MODEL = "claude-sonnet-4-5"  # a 200k window on both sides
SYSTEM = "You are a careful coding agent. " * 375  # ~12 KB
FILLER = "def handler(request):\n    return respond(request.body, status=200)  # line of a source file\n"
TURNS = 60


def _result(i: int) -> str:
    return f"contents of file_{i}.py\n" + FILLER * (16_000 // len(FILLER))


@pytest.fixture
def gw_for(fake, clean_fake, tmp_path):
    made = []

    def make(policy: str):
        (tmp_path / policy).mkdir(exist_ok=True)
        g = start_gateway(fake, tmp_path / policy, own_account(fake), admin_api_key=ADMIN_KEY, overflow_policy=policy)
        made.append(g)
        return g

    yield make
    for g in made:
        g.server.stop()


def _kiro_ok(fake) -> list[dict]:
    sent = [r for r in fake.requests if r["path"] == "/generateAssistantResponse"]
    assert sent and sent[-1]["status"] == 200 and sent[-1]["rule"] is None, \
        [(r["status"], r.get("rule"), r.get("verdict")) for r in sent]
    return sent


def _anthropic_history(turns: int) -> list[dict]:
    msgs: list[dict] = [{"role": "user", "content": "FIRST TASK: refactor the handlers"}]
    for i in range(turns):
        msgs.append({"role": "assistant", "content": [
            {"type": "text", "text": f"Reading file {i}."},
            {"type": "tool_use", "id": f"toolu_{i:04d}", "name": "Read", "input": {"path": f"file_{i}.py"}}]})
        msgs.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{i:04d}", "content": _result(i)}]})
    return msgs


READ = {"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}


def test_anthropic_session_trimmed_every_turn_answered(gw_for, fake):
    gw = gw_for("trim")
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=60)
    trimmed, refused = [], 0
    for turn in range(1, TURNS + 1):
        fake.clear_requests()
        raw = client.messages.with_raw_response.create(
            model=MODEL, max_tokens=8000, system=SYSTEM, tools=[READ], messages=_anthropic_history(turn))
        msg = raw.parse()
        assert msg.content[0].text  # the fake answers (it echoes the tool result it got)
        refused += sum(r.get("verdict") == "context_full" for r in _kiro_ok(fake))
        trimmed.append(int(raw.headers.get("x-kiro-trimmed-messages", "0")))
    print(f"anthropic session: {TURNS} turns, trimmed from turn {trimmed.index(next(t for t in trimmed if t)) + 1}, "
          f"{trimmed[-1]} messages left out at the end; Kiro refused {refused} (retried smaller)")
    assert trimmed[0] == 0 and trimmed[-1] > 0  # early turns fit, late ones were trimmed
    logs = httpx.get(gw.base_url + "/api/admin/logs", headers={"x-api-key": ADMIN_KEY}, timeout=10).json()["items"]
    assert logs[0]["trimmedMessages"] == trimmed[-1] > 0


def test_anthropic_session_with_the_error_policy_gets_prompt_too_long(gw_for, fake):
    gw = gw_for("error")
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=60)
    with pytest.raises(anthropic.BadRequestError) as e:
        for turn in range(1, TURNS + 1):
            client.messages.create(model=MODEL, max_tokens=8000, system=SYSTEM, tools=[READ],
                                   messages=_anthropic_history(turn))
    assert e.value.body["error"]["message"].startswith("prompt is too long: ")


def test_openai_chat_session_trimmed(gw_for, fake):
    gw = gw_for("trim")
    client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0, timeout=60)
    tools = [{"type": "function", "function": {"name": "Read", "parameters": READ["input_schema"]}}]
    msgs: list[dict] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "FIRST TASK: refactor"}]
    last = 0
    for i in range(TURNS):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{i}", "type": "function", "function": {"name": "Read", "arguments": f'{{"path": "f{i}.py"}}'}}]})
        msgs.append({"role": "tool", "tool_call_id": f"call_{i}", "content": _result(i)})
        fake.clear_requests()
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, tools=tools,
                                                               max_tokens=8000)
        assert raw.parse().choices[0].message.content
        _kiro_ok(fake)
        last = int(raw.headers.get("x-kiro-trimmed-messages", "0"))
    assert last > 0
    with pytest.raises(openai.BadRequestError) as e:
        err_gw = gw_for("error")
        openai.OpenAI(base_url=err_gw.base_url + "/v1", api_key=err_gw.api_key, max_retries=0,
                      timeout=60).chat.completions.create(model=MODEL, messages=msgs, tools=tools, max_tokens=8000)
    assert e.value.body["code"] == "context_length_exceeded"


def test_gemini_session_trimmed(gw_for, fake):
    gw = gw_for("trim")
    client = genai.Client(api_key=gw.api_key, http_options=gt.HttpOptions(base_url=gw.base_url))
    decl = gt.Tool(function_declarations=[gt.FunctionDeclaration(name="Read", parameters_json_schema=READ["input_schema"])])
    contents: list[gt.Content] = [gt.Content(role="user", parts=[gt.Part(text="FIRST TASK: refactor")])]
    longest = last = 0
    for i in range(TURNS):
        contents.append(gt.Content(role="model", parts=[gt.Part(function_call=gt.FunctionCall(
            name="Read", args={"path": f"f{i}.py"}))]))
        contents.append(gt.Content(role="user", parts=[gt.Part(function_response=gt.FunctionResponse(
            name="Read", response={"content": _result(i)}))]))
        fake.clear_requests()
        r = client.models.generate_content(model=MODEL, contents=contents, config=gt.GenerateContentConfig(
            system_instruction=SYSTEM, tools=[decl], max_output_tokens=8000))
        assert r.text
        sent = _kiro_ok(fake)
        last = len(sent[-1]["body"]["conversationState"].get("history") or [])
        longest = max(longest, last)
    assert last < longest or last < 2 * TURNS  # the history Kiro got was trimmed
    err_gw = gw_for("error")
    bad = genai.Client(api_key=err_gw.api_key, http_options=gt.HttpOptions(base_url=err_gw.base_url))
    with pytest.raises(Exception) as e:
        bad.models.generate_content(model=MODEL, contents=contents, config=gt.GenerateContentConfig(
            system_instruction=SYSTEM, tools=[decl], max_output_tokens=8000))
    assert "input token count" in str(e.value)


def test_kiro_saying_too_long_though_our_count_fit_is_retried_once_smaller(gw_for, fake):
    gw = gw_for("trim")
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=60)
    full = {"status": 400, "body": {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}}
    fake.clear_requests()
    fake.add_script({**full, "times": 1})
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=8000, system=SYSTEM, tools=[READ],
                                                   messages=_anthropic_history(10))
    sent = [r for r in fake.requests if r["path"] == "/generateAssistantResponse"]
    assert [r["status"] for r in sent] == [400, 200]
    assert len(sent[1]["body"]["conversationState"]["history"]) < len(sent[0]["body"]["conversationState"]["history"])
    assert int(raw.headers["x-kiro-trimmed-messages"]) > 0 and raw.parse().content
    fake.add_script({**full, "times": -1})
    try:
        with pytest.raises(anthropic.BadRequestError) as e:  # still too long after the one retry
            client.messages.create(model=MODEL, max_tokens=8000, system=SYSTEM, tools=[READ],
                                   messages=_anthropic_history(10))
    finally:
        fake.clear_scripts()
    assert e.value.body["error"]["message"].startswith("prompt is too long: ")


def test_anthropic_session_compacted_summaries_are_few_and_reused(gw_for, fake):
    gw = gw_for("compact")
    fake.add_script({"match": "Summarise the following earlier part", "times": -1,
                     "steps": [{"text": "SUMMARY: the user is refactoring the handlers; files were read."}]})
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=60)
    asked = with_summary = 0
    try:
        for turn in range(1, TURNS + 1):
            fake.clear_requests()
            raw = client.messages.with_raw_response.create(
                model=MODEL, max_tokens=8000, system=SYSTEM, tools=[READ], messages=_anthropic_history(turn),
                metadata={"user_id": "user_x_account__session_7f9c2ba4-e88f-4c2b-9f0a-3b2c1d4e5f60"})
            assert raw.parse().content
            sent = _kiro_ok(fake)
            asked += sum("Summarise the following earlier part" in str(r["body"]) for r in sent)
            last = sent[-1]["body"]["conversationState"]
            if "SUMMARY: the user is refactoring" in str(last.get("history")):
                with_summary += 1
                assert "FIRST TASK" in str(last["history"]) and int(raw.headers["x-kiro-trimmed-messages"]) > 0
    finally:
        fake.clear_scripts()
    print(f"compact: {TURNS} turns, {asked} summaries asked, {with_summary} turns sent with a summary")
    assert with_summary >= 10 and 1 <= asked <= 4  # summarised rarely, reused in between
