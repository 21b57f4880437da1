"""Kiro's newer reply events through all four dialects' SDKs, on a model that is not Claude:
reasoningContentEvent → a thinking block, metadataEvent → the usage clients see, an unknown
event skipped (logged once), meteringEvent's credits kept."""

from __future__ import annotations

import logging

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from kiro_gateway.fake.server import FakeKiro
from support import start_gateway

MODEL = "glm-5"
STEPS = [
    {"reasoning": "Let me weigh it.", "signature": "kiro-sig", "chunks": 2},
    {"text": "The answer is 42."},
    {"event": {"type": "brandNewEvent", "payload": {"x": 1}}},
    {"metadata": {"tokenUsage": {"inputTokens": 1234, "outputTokens": 56, "contextUsagePercentage": 0.7},
                  "stopReason": "end_turn"}},
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with FakeKiro() as fake:
        acct = fake.add_account(models=[MODEL, "claude-sonnet-4.6"])
        gw = start_gateway(fake, tmp_path_factory.mktemp("events"),
                           [{"refreshToken": acct["refresh_token"], "authMethod": "social"}])
        try:
            yield fake, gw
        finally:
            gw.server.stop()


@pytest.fixture
def gw(setup):
    fake, gw = setup
    fake.add_script({"steps": STEPS})
    yield gw
    assert not fake.scripts  # the scripted reply was the one served
    sent = [r for r in fake.requests if r["path"].endswith("generateAssistantResponse")][-1]
    assert sent["body"]["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] == MODEL


def test_anthropic(gw, caplog):
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    with caplog.at_level(logging.INFO, logger="kiro_gateway.kiro"):
        with client.messages.stream(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "q"}]) as s:
            msg = s.get_final_message()
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == "Let me weigh it." and msg.content[0].signature
    assert msg.content[1].text == "The answer is 42."
    # A stream keeps the input figure its message_start announced (Claude Code reads both events);
    # Kiro's output figure is the one shown.
    assert 0 < msg.usage.input_tokens < 100 and msg.usage.output_tokens == 56
    assert msg.stop_reason == "end_turn"
    unknown = [r for r in caplog.records if "brandNewEvent" in r.getMessage()]
    assert len(unknown) <= 1  # logged once per process (maybe by an earlier test)


def test_anthropic_whole_message_takes_kiros_token_figures(gw):
    client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "q"}])
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (1234, 56)


def test_openai_chat(gw):
    oai = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0)
    stream = oai.chat.completions.create(model=MODEL, stream=True, stream_options={"include_usage": True},
                                         messages=[{"role": "user", "content": "q"}])
    text, reasoning, usage, finish = "", "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            reasoning += getattr(c.delta, "reasoning_content", None) or ""
            finish = c.finish_reason or finish
    assert (reasoning, text, finish) == ("Let me weigh it.", "The answer is 42.", "stop")
    assert (usage.prompt_tokens, usage.completion_tokens) == (1234, 56)


def test_openai_responses(gw):
    oai = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.api_key, max_retries=0)
    with oai.responses.stream(model=MODEL, input="q") as s:
        done = s.get_final_response()
    kinds = [o.type for o in done.output]
    assert kinds == ["reasoning", "message"]
    reasoning = done.output[0]
    texts = [c.text for c in (reasoning.summary or [])] + [c.text for c in (reasoning.content or [])]
    assert "Let me weigh it." in texts
    assert done.output_text == "The answer is 42."
    assert (done.usage.input_tokens, done.usage.output_tokens) == (1234, 56)


def test_gemini(gw):
    client = genai.Client(vertexai=False, api_key=gw.api_key,
                          http_options=types.HttpOptions(base_url=gw.base_url, api_version="v1beta"))
    thought, text, usage = "", "", None
    for chunk in client.models.generate_content_stream(
            model=MODEL, contents="q",
            config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))):
        usage = chunk.usage_metadata or usage
        for cand in chunk.candidates or []:
            for part in (cand.content.parts if cand.content else None) or []:
                if part.thought:
                    thought += part.text or ""
                else:
                    text += part.text or ""
    assert (thought, text) == ("Let me weigh it.", "The answer is 42.")
    assert usage.prompt_token_count == 1234
    assert usage.candidates_token_count + (usage.thoughts_token_count or 0) == 56
