"""Stop sequences, enforced by the gateway (Kiro has none): the scanner on text that arrives in
pieces, and each client API end to end against the fake."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_gateway.core.conversation import Stop, TextDelta, ThinkingDelta, Usage
from kiro_gateway.core.stops import StopScanner, stop_at

MODEL = "claude-sonnet-4-6"

alphabet = st.sampled_from("abcST ")


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=6),
       sequences=st.lists(st.text(alphabet, min_size=1, max_size=4), min_size=1, max_size=3))
def test_scanner_cuts_at_the_first_stop_sequence_however_the_text_is_split(text, cuts, sequences):
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    scanner = StopScanner(sequences)
    out, found = "", None
    for p in pieces:
        released, found = scanner.feed(p)
        out += released
        if found is not None:
            break
    if found is None:
        out += scanner.flush()
    # the sequence completed first (then the longer), as a model stopping token by token would
    hits = sorted((text.find(s) + len(s), text.find(s), s) for s in sequences if s in text)
    if hits:
        _, first, seq = hits[0]
        assert out == text[:first] and found == seq
    else:
        assert out == text and found is None


def test_filter_flushes_held_text_before_other_events_and_stops_the_source():
    closed = []

    async def source():
        try:
            yield [TextDelta("ab"), TextDelta("S")]  # "S" may start "STOP": held back
            yield [ThinkingDelta("t"), TextDelta("xy STO")]
            yield [TextDelta("P and more")]
            yield [TextDelta("never read"), Usage(1, 1), Stop("end_turn")]
        finally:
            closed.append(True)

    async def run():
        return [b async for b in stop_at(source(), ["STOP"], 7)]

    batches = asyncio.run(run())
    events = [e for b in batches for e in b]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "abSxy "
    assert events.index(ThinkingDelta("t")) == [type(e) for e in events].index(ThinkingDelta) == 2
    assert events[-1] == Stop("stop_sequence", stop_sequence="STOP")
    assert isinstance(events[-2], Usage) and events[-2].input_tokens == 7
    assert closed == [True]


def _slow_script(fake):
    # the stop sequence arrives first; the rest would take 3 s
    fake.add_script({"match": "count slowly", "steps": [{"text": "one two "}, {"text": "thr"}, {"text": "ee four"}]
                     + [s for i in range(30) for s in ({"delay": 0.1}, {"text": f" {i}"})]})


def _cut_early(fake, since: float) -> None:
    deadline = time.time() + 3
    while time.time() < deadline:
        rec = [r for r in fake.requests if r["path"] == "/generateAssistantResponse"][-1]
        if rec.get("ended"):
            break
        time.sleep(0.05)
    assert rec.get("ended") == "client_gone" and rec["ended_at"] - since < 1.5


def test_anthropic_stop_sequences(client, clean_fake):
    _slow_script(clean_fake)
    t0 = time.time()
    msg = client.messages.create(model=MODEL, max_tokens=50, stop_sequences=["three", "nine"],
                                 messages=[{"role": "user", "content": "count slowly"}])
    assert msg.content[0].text == "one two " and msg.stop_reason == "stop_sequence" and msg.stop_sequence == "three"
    _cut_early(clean_fake, t0)
    _slow_script(clean_fake)
    with client.messages.stream(model=MODEL, max_tokens=50, stop_sequences=["three"],
                                messages=[{"role": "user", "content": "count slowly"}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == "one two " and final.stop_reason == "stop_sequence"
    assert final.stop_sequence == "three"


def test_openai_chat_stop(gateway, clean_fake):
    oai = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=gateway.api_key, max_retries=0)
    _slow_script(clean_fake)
    r = oai.chat.completions.create(model=MODEL, stop="three", messages=[{"role": "user", "content": "count slowly"}])
    assert r.choices[0].message.content == "one two " and r.choices[0].finish_reason == "stop"
    _slow_script(clean_fake)
    t0 = time.time()
    chunks = list(oai.chat.completions.create(model=MODEL, stop=["four", "three"], stream=True,
                                              messages=[{"role": "user", "content": "count slowly"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    _cut_early(clean_fake, t0)


def test_gemini_stop_sequences(gateway, clean_fake):
    _slow_script(clean_fake)
    t0 = time.time()
    r = httpx.post(f"{gateway.base_url}/v1beta/models/{MODEL}:generateContent",
                   headers={"x-goog-api-key": gateway.api_key}, timeout=10,
                   json={"contents": [{"role": "user", "parts": [{"text": "count slowly"}]}],
                         "generationConfig": {"stopSequences": ["three"]}})
    cand = r.json()["candidates"][0]
    assert "".join(p["text"] for p in cand["content"]["parts"]) == "one two " and cand["finishReason"] == "STOP"
    _cut_early(clean_fake, t0)
