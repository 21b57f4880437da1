"""Default replies on the wire: framing checked by botocore's decoder and by ours (docs/kiro-protocol.md, “Event-stream framing”)."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from fakekiro_support import assistant, body, generate, result, text_of, tool_spec, user

from kiro_gateway.fake.replies import THINKING_PREFIX

ECHO = "Hello from fake Kiro. You said: "


def trailer_ok(evs, raw_size: int) -> None:
    """Every successful reply ends with metering then context usage (docs/kiro-protocol.md, “Event payloads”)."""
    assert evs[-2] == ("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.01})
    assert evs[-1] == ("contextUsageEvent", {"contextUsagePercentage": round(raw_size / 4 / 200000 * 100, 4)})


async def test_echo_reply_framing_and_headers(fake, http):
    payload = body("What   is\n\tthe  weather?")
    res = await generate(http, fake, payload)
    assert res.status == 200
    assert res.headers["Content-Type"] == "application/vnd.amazon.eventstream"
    assert res.headers["Transfer-Encoding"] == "chunked"
    evs = res.events
    assert text_of(evs) == ECHO + "What is the weather?"
    names = [n for n, _ in evs]
    assert names[:-2] == ["assistantResponseEvent"] * (len(evs) - 2)
    # ~20 characters per event by default
    assert len(evs) - 2 == -(-len(ECHO + "What is the weather?") // 20)
    trailer_ok(evs, len(orjson.dumps(payload)))


async def test_frame_headers_in_kiro_order(fake, http):
    from fakekiro_support import decode_botocore

    res = await generate(http, fake, body("hi"))
    headers, _ = decode_botocore(res.raw)[0]
    assert list(headers) == [":event-type", ":content-type", ":message-type"]
    assert headers == {
        ":event-type": "assistantResponseEvent",
        ":content-type": "application/json",
        ":message-type": "event",
    }


async def test_echo_keeps_last_200_chars(fake, http):
    words = " ".join(f"w{i}" for i in range(400))
    res = await generate(http, fake, body(words))
    text = text_of(res.events)
    assert text == ECHO + words[-200:]
    assert text.endswith("w399")


@pytest.mark.parametrize("chunks", [1, 3, 50, 200])
async def test_default_chunks_exact(fake, http, chunks):
    fake.update_settings(default_chunks=chunks)
    res = await generate(http, fake, body("count my chunks"))
    evs = res.events
    texts = [p["content"] for n, p in evs if n == "assistantResponseEvent"]
    assert len(texts) == chunks
    assert all(texts)  # padded rather than empty when the text is short
    assert "".join(texts).startswith(ECHO + "count my chunks")


async def test_reply_chars_pads(fake, http):
    fake.update_settings(reply_chars=1000)
    res = await generate(http, fake, body("pad"))
    assert len(text_of(res.events)) == 1000


@pytest.mark.parametrize("mode", ["enabled", "adaptive"])
async def test_thinking_prefix(fake, http, mode):
    prefix = f"<thinking_mode>{mode}</thinking_mode><max_thinking_length>20000</max_thinking_length>"
    res = await generate(http, fake, body("think", history=[user(prefix + "\nsystem"), assistant("OK")]))
    assert text_of(res.events) == THINKING_PREFIX + ECHO + "think"
    res = await generate(http, fake, body(prefix + " now"))
    assert text_of(res.events).startswith(THINKING_PREFIX + ECHO)


async def test_no_thinking_without_marker(fake, http):
    res = await generate(http, fake, body("<thinking_mode>disabled</thinking_mode>"))
    assert "<thinking>" not in text_of(res.events)


async def test_tool_results_reply(fake, http):
    uses = [{"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"toolUseId": "tooluse_2", "name": "get_weather", "input": {"city": "Rome"}}]
    long_text = "sunny " * 100
    payload = body(
        "",
        history=[user("weather?"), assistant(" ", uses=uses)],
        results=[result("tooluse_1", long_text), result("tooluse_2", "rain")],
        tools=[tool_spec()],
    )
    res = await generate(http, fake, payload)
    assert res.status == 200, res.raw
    assert text_of(res.events) == "Received 2 tool result(s): " + long_text[:200]


async def test_directive_tool_call(fake, http):
    args = {"city": "Paris", "note": "brackets ]] inside", "nested": {"a": [1, 2]}}
    content = f"Please [[fake:tool get_weather {orjson.dumps(args).decode()}]] thanks"
    res = await generate(http, fake, body(content, tools=[tool_spec()]))
    evs = res.events
    assert text_of(evs) == "I'll use the get_weather tool."
    tool = [p for n, p in evs if n == "toolUseEvent"]
    assert len(tool) == 4  # three input fragments, then the stop frame
    ids = {p["toolUseId"] for p in tool}
    assert len(ids) == 1
    (tid,) = ids
    assert tid.startswith("tooluse_") and len(tid) == len("tooluse_") + 22
    assert all(p["name"] == "get_weather" for p in tool)
    assert orjson.loads("".join(p.get("input", "") for p in tool)) == args
    assert tool[-1] == {"name": "get_weather", "toolUseId": tid, "stop": True}
    assert all("stop" not in p for p in tool[:-1])
    # tool frames come after the text and before the trailer
    names = [n for n, _ in evs]
    assert names.index("toolUseEvent") > max(i for i, n in enumerate(names) if n == "assistantResponseEvent")
    trailer_ok(evs, len(orjson.dumps(body(content, tools=[tool_spec()]))))


async def test_two_directives_and_multiline_json(fake, http):
    content = '[[fake:tool a {"x": 1}]] and [[fake:tool b {\n  "y": [\n 2\n ]\n}]]'
    evs = (await generate(http, fake, body(content))).events
    stops = [p for n, p in evs if n == "toolUseEvent" and p.get("stop")]
    assert [p["name"] for p in stops] == ["a", "b"]
    assert stops[0]["toolUseId"] != stops[1]["toolUseId"]


async def test_directive_ignored_when_results_present(fake, http):
    uses = [{"toolUseId": "tooluse_1", "name": "a", "input": {}}]
    payload = body("[[fake:tool a {}]]", history=[user("go"), assistant(" ", uses=uses)],
                   results=[result("tooluse_1", "done")], tools=[tool_spec("a")])
    evs = (await generate(http, fake, payload)).events
    assert not [n for n, _ in evs if n == "toolUseEvent"]
    assert text_of(evs) == "Received 1 tool result(s): done"


async def test_keep_alive_reuses_connection(fake, http):
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(3):
            async with session.post(fake.url("/generateAssistantResponse"), data=orjson.dumps(body("k")),
                                    headers={"Authorization": "Bearer t"}) as resp:
                assert resp.status == 200
                await resp.read()
    peers = [r["peer"] for r in fake.requests]
    assert len(peers) == 3 and len(set(peers)) == 1 and peers[0].startswith("127.0.0.1:")


async def test_first_byte_and_chunk_delay_settings(fake, http):
    fake.update_settings(default_chunks=4, chunk_delay=0.05, first_byte_delay=0.1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with http.post(fake.url("/generateAssistantResponse"), data=orjson.dumps(body("slow")),
                         headers={"Authorization": "Bearer t"}) as resp:
        first = loop.time() - start
        await resp.read()
        total = loop.time() - start
    assert first >= 0.1
    assert total >= 0.1 + 3 * 0.05
