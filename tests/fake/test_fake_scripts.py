"""Scripted replies: selection (match, token, times), HTTP errors, frames, faults."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from fakekiro_support import assistant, body, decode_botocore, decode_ours, generate, text_of, user

from kiro_gateway.kiro.eventstream import EventStreamDecoder, encode_frame

ECHO = "Hello from fake Kiro. You said: "


async def test_match_selects_by_text(fake, http):
    fake.add_script({"match": "weather", "steps": [{"text": "It is sunny."}]})
    assert text_of((await generate(http, fake, body("hello"))).events) == ECHO + "hello"
    assert text_of((await generate(http, fake, body("the weather?"))).events) == "It is sunny."
    # used once (times defaults to 1), then the default reply again
    assert text_of((await generate(http, fake, body("the weather?"))).events) == ECHO + "the weather?"


async def test_match_looks_at_history_too(fake, http):
    fake.add_script({"match": "secret-word", "steps": [{"text": "found"}]})
    payload = body("next", history=[user("the secret-word is here"), assistant("ok")])
    assert text_of((await generate(http, fake, payload)).events) == "found"


async def test_token_targets_one_account(fake, http):
    fake.add_script({"token": "tok-b", "status": 429, "times": -1})
    assert (await generate(http, fake, body("x"), token="tok-a")).status == 200
    res = await generate(http, fake, body("x"), token="tok-b")
    assert res.status == 429
    assert res.json["__type"].endswith("ThrottlingException")
    assert (await generate(http, fake, body("x"), token="tok-b")).status == 429  # forever
    assert fake.stats()["scripts_pending"] == 1


async def test_times_and_order(fake, http):
    fake.add_script([{"times": 2, "steps": [{"text": "first"}]}, {"steps": [{"text": "second"}]}])
    got = [text_of((await generate(http, fake, body("x"))).events) for _ in range(4)]
    assert got == ["first", "first", "second", ECHO + "x"]


async def test_status_with_custom_body_and_headers(fake, http):
    fake.add_script({"status": 503, "body": "upstream overloaded", "headers": {"Retry-After": "2"}})
    res = await generate(http, fake, body("x"))
    assert (res.status, res.raw, res.headers["Retry-After"]) == (503, b"upstream overloaded", "2")
    assert res.headers["Content-Type"].startswith("text/plain")
    fake.add_script({"status": 400, "body": {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}})
    res = await generate(http, fake, body("x"))
    assert res.status == 400 and res.json["reason"] == "CONTENT_LENGTH_EXCEEDS_THRESHOLD"
    assert fake.requests[-1]["verdict"] == "error" and fake.requests[-1]["scripted"]


@pytest.mark.parametrize(("status", "needle"), [(402, "MONTHLY_REQUEST_COUNT"), (403, "bearer token"),
                                                (500, "unexpected error"), (503, "MODEL_TEMPORARILY_UNAVAILABLE")])
async def test_status_default_bodies(fake, http, status, needle):
    fake.add_script({"status": status})
    res = await generate(http, fake, body("x"))
    assert res.status == status and needle in res.raw.decode()


async def test_invalid_request_does_not_consume_script(fake, http):
    fake.add_script({"status": 500})
    bad = body("x")
    bad["conversationState"]["chatTriggerType"] = "NOPE"
    assert (await generate(http, fake, bad)).status == 400
    assert (await generate(http, fake, body("x"))).status == 500


async def test_text_chunks_and_thinking(fake, http):
    fake.add_script({"steps": [{"thinking": "Hmm.", "chunks": 2}, {"text": "abcdefghij", "chunks": 5}]})
    evs = (await generate(http, fake, body("x"))).events
    texts = [p["content"] for n, p in evs if n == "assistantResponseEvent"]
    assert "".join(texts[:2]) == "<thinking>\nHmm.\n</thinking>\n\n" and all(texts[:2])
    assert texts[2:] == ["ab", "cd", "ef", "gh", "ij"]
    fake.add_script({"steps": [{"text": "ab", "chunks": 5}, {"text": ""}, {"text": "c"}]})
    evs = (await generate(http, fake, body("x"))).events
    assert [p["content"] for n, p in evs if n == "assistantResponseEvent"] == ["a", "b", "c"]  # never empty


@pytest.mark.parametrize("fragments", [1, 3, 17])
async def test_tool_fragments_reassemble(fake, http, fragments):
    args = {"path": "/tmp/ü.txt", "content": "line1\nline2", "n": [1, 2.5, None, True]}
    fake.add_script({"steps": [{"text": "Writing."},
                               {"tool": {"name": "Write", "input": args, "id": "tooluse_fixed", "fragments": fragments}}]})
    evs = (await generate(http, fake, body("x"))).events
    tool = [p for n, p in evs if n == "toolUseEvent"]
    assert len(tool) == fragments + 1
    assert all(p["toolUseId"] == "tooluse_fixed" and p["name"] == "Write" for p in tool)
    assert orjson.loads("".join(p.get("input", "") for p in tool[:-1])) == args
    assert tool[-1].get("stop") is True
    assert [n for n, _ in evs][-2:] == ["meteringEvent", "contextUsageEvent"]


async def test_exception_frame_ends_stream(fake, http):
    fake.add_script({"steps": [{"text": "partial"},
                               {"exception": {"type": "ContentLengthExceededException", "message": "too long"}}]})
    res = await generate(http, fake, body("x"))
    frames = decode_botocore(res.raw)
    headers, payload = frames[-1]
    assert headers[":message-type"] == "exception"
    assert headers[":exception-type"] == "ContentLengthExceededException"
    assert orjson.loads(payload) == {"message": "too long"}
    assert len(frames) == 2  # no trailer after an exception
    assert decode_ours(res.raw)[-1] == (headers, payload)


async def test_error_frame(fake, http):
    fake.add_script({"steps": [{"error_frame": {"code": "InternalServerError", "message": "boom"}}]})
    (headers, payload), = decode_botocore((await generate(http, fake, body("x"))).raw)
    assert headers[":message-type"] == "error" and headers[":error-code"] == "InternalServerError"
    assert orjson.loads(payload)["message"] == "boom"


async def test_custom_usage_and_events(fake, http):
    fake.add_script({"steps": [{"text": "a"}, {"context_usage": 100.0}, {"metering": 0.5},
                               {"event": {"type": "followupPromptEvent", "payload": {"followupPrompt": {"content": "?"}}}}]})
    evs = (await generate(http, fake, body("x"))).events
    assert evs[1:] == [("contextUsageEvent", {"contextUsagePercentage": 100.0}),
                       ("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.5}),
                       ("followupPromptEvent", {"followupPrompt": {"content": "?"}})]


async def test_trailer_can_be_suppressed(fake, http):
    fake.add_script({"trailer": False, "steps": [{"text": "cut"}]})
    assert [n for n, _ in (await generate(http, fake, body("x"))).events] == ["assistantResponseEvent"]


async def test_drop_cuts_the_connection(fake, http):
    fake.add_script({"steps": [{"text": "before drop"}, {"drop": True}, {"text": "never"}]})
    async with http.post(fake.url("/generateAssistantResponse"), data=orjson.dumps(body("x")),
                         headers={"Authorization": "Bearer t"}) as resp:
        assert resp.status == 200
        got = b""
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in resp.content.iter_any():
                got += chunk
    msgs = EventStreamDecoder().feed(got)
    assert [orjson.loads(m.payload)["content"] for m in msgs] == ["before drop"]
    # the server is fine afterwards
    assert (await generate(http, fake, body("y"))).status == 200


async def test_garbage_between_frames(fake, http):
    fake.add_script({"steps": [{"text": "a"}, {"garbage": 37}, {"text": "b"}]})
    res = await generate(http, fake, body("x"))
    dec = EventStreamDecoder()
    msgs = dec.feed(res.raw)
    assert dec.errors_seen > 0
    assert [orjson.loads(m.payload).get("content") for m in msgs][:2] == ["a", "b"]
    # exactly 37 stray bytes: every other byte belongs to a frame (re-encoded here to measure)
    assert len(res.raw) == 37 + sum(len(encode_frame(m.headers, m.payload)) for m in msgs)


async def test_delays(fake, http):
    fake.add_script({"first_byte_delay": 0.15, "chunk_delay": 0.05,
                     "steps": [{"text": "abc", "chunks": 3}, {"delay": 0.1}, {"text": "d"}]})
    loop = asyncio.get_running_loop()
    start = loop.time()
    res = await generate(http, fake, body("x"))
    assert loop.time() - start >= 0.15 + 2 * 0.05 + 0.1
    assert text_of(res.events) == "abcd"


async def test_script_without_steps_uses_default_reply(fake, http):
    fake.add_script({"first_byte_delay": 0.01})
    assert text_of((await generate(http, fake, body("hi"))).events) == ECHO + "hi"
    assert fake.requests[-1]["scripted"] is True


@pytest.mark.parametrize("script", [
    {"steps": [{"txt": "typo"}]},
    {"steps": [{"text": "a", "tool": {"name": "x"}}]},
    {"times": 0},
    {"status": 99},
    {"unknown": 1},
    {"steps": [{"tool": {"input": {}}}]},
])
async def test_bad_scripts_rejected(fake, http, script):
    with pytest.raises(ValueError):
        fake.add_script(script)
    async with http.post(fake.url("/__fake/scripts"), json=script) as resp:
        assert resp.status == 400
        assert "error" in await resp.json()
    assert fake.stats()["scripts_pending"] == 0
