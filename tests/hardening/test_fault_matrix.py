"""The fault matrix: every upstream fault the fake Kiro can send × each dialect × stream or not.

One gateway over a real socket on the fake, one account. For each cell the client must get a
well-formed answer in its own dialect within a bound — a success with the whole text, or an error
(an HTTP error in the dialect's JSON shape, or, once a stream has begun, the dialect's own error
event) — never a 500 of ours, never a hang; and the account must be left in the state the fault
calls for. The suite prints the matrix (faults × dialects passed), as the closing note of the
hardening work quotes it.
"""

from __future__ import annotations

import json

import httpx
import pytest

from gateway_proc import ADMIN_KEY
from support import start_gateway

MODEL = "claude-sonnet-4-6"
TEXT = "every word of it"

DIALECTS = {
    "anthropic": ("/v1/messages", lambda s: {"model": MODEL, "max_tokens": 50, "stream": s,
                                             "messages": [{"role": "user", "content": "go"}]}),
    "openai_chat": ("/v1/chat/completions", lambda s: {"model": MODEL, "stream": s,
                                                       "messages": [{"role": "user", "content": "go"}]}),
    "openai_responses": ("/v1/responses", lambda s: {"model": MODEL, "stream": s, "input": "go"}),
    "gemini": ("/v1beta/models/gemini-2.5-pro:{}", lambda s: {"contents": [{"role": "user", "parts": [{"text": "go"}]}]}),
}

_T = [{"text": TEXT, "chunks": 4}]
# name → (scripts, outcome "ok" | "error", the account's status afterwards)
FAULTS = {
    "throttled 429": ([{"status": 429, "times": -1}], "error", "cooldown"),
    "monthly limit 402": ([{"status": 402, "times": -1}], "error", "exhausted"),
    "server error 500": ([{"status": 500, "times": -1}], "error", "active|unhealthy"),
    "improperly formed 400": ([{"status": 400, "times": -1}], "error", "active"),
    "bad token 403 twice": ([{"status": 403, "times": 2, "body": {"message": "The bearer token included in the "
                                                                             "request is invalid."}}],
                            "ok|error", "active"),
    "throttling exception first": ([{"steps": [{"exception": {"type": "ThrottlingException", "message": "slow"}}],
                                     "times": -1}], "error", "cooldown"),
    "error frame after text": ([{"steps": [{"text": "partial "}, {"error_frame": {"code": "InternalError",
                                                                                  "message": "boom"}}]}],
                               "error", "active|unhealthy"),
    "reset before output, once": ([{"steps": [{"drop": True}]}], "ok", "active"),
    "reset mid-stream": ([{"steps": [{"text": "partial ", "chunks": 2}, {"drop": True}], "times": -1}],
                         "error", "active|unhealthy"),
    "frame cut, clean end": ([{"steps": [{"text": "partial "}, {"cut": 9}], "times": -1}], "error", "active|unhealthy"),
    "wrong message CRC": ([{"steps": [{"text": "partial "}, {"bad_crc": "lost"}, {"text": "end"}], "times": -1}],
                          "error", "active|unhealthy"),
    "wrong prelude CRC": ([{"steps": [{"text": "partial "}, {"bad_crc": {"text": "lost", "where": "prelude"}},
                                      {"text": "end"}], "times": -1}], "error", "active|unhealthy"),
    "a few stray bytes": ([{"steps": [{"text": "every "}, {"garbage": 7}, {"text": "word of it"}]}], "ok", "active"),
    "first byte too late": ([{"first_byte_delay": 1.5, "steps": _T, "times": -1}], "error", "active|unhealthy"),
    "unknown event": ([{"steps": [{"event": {"type": "someNewEvent", "payload": {"x": 1}}}, *_T]}], "ok", "active"),
    "malformed event JSON": ([{"steps": [{"event": {"type": "assistantResponseEvent", "payload": "{not json"}},
                                         *_T]}], "ok", "active"),
}

RESULTS: dict[str, dict[str, int]] = {}
RETRIED = {"reset before output, once", "bad token 403 twice"}  # answered by a retry: the default reply
DEFAULT = "Hello from fake Kiro. You said: go"


@pytest.fixture(scope="module")
def gw(fake, tmp_path_factory):
    acct = fake.add_account()
    creds = [{"refreshToken": acct["refresh_token"], "accessToken": acct["access_token"],
              "expiresAt": acct["expires_at"], "authMethod": "social"}]
    g = start_gateway(fake, tmp_path_factory.mktemp("faults"), creds, admin_api_key=ADMIN_KEY, usage_on_start=False,
                      first_token_timeout=1.0, read_timeout=3.0, max_attempts=2, max_attempts_per_credential=2, failure_limit=3,
                      refresh_timeout=1.0)
    g.token = acct["access_token"]
    yield g
    g.server.stop()
    _print_matrix()


def _print_matrix() -> None:
    if not RESULTS:
        return
    names = list(DIALECTS)
    print("\nfault matrix (cells passed of 2: stream and not)")
    print(f"{'fault':34}" + "".join(f"{n:>18}" for n in names))
    for fault, row in RESULTS.items():
        print(f"{fault:34}" + "".join(f"{row.get(n, 0):>18}" for n in names))


def _admin(gw, method: str, path: str) -> httpx.Response:
    return httpx.request(method, gw.base_url + "/api/admin" + path, headers={"x-api-key": ADMIN_KEY}, timeout=10)


def _status(gw) -> str:
    return _admin(gw, "GET", "/credentials").json()["credentials"][0]["status"]


def _call(gw, dialect: str, stream: bool) -> httpx.Response:
    path, body = DIALECTS[dialect]
    if dialect == "gemini":
        path = path.format("streamGenerateContent?alt=sse" if stream else "generateContent")
    return httpx.post(gw.base_url + path, json=body(stream), timeout=20,
                      headers={"x-api-key": gw.api_key, "anthropic-version": "2023-06-01"})


def _error_shape(dialect: str, doc: dict) -> bool:
    if dialect == "anthropic":
        return doc.get("type") == "error" and isinstance(doc.get("error", {}).get("message"), str)
    err = doc.get("error")
    if dialect == "gemini":
        return isinstance(err, dict) and isinstance(err.get("code"), int) and isinstance(err.get("status"), str)
    return isinstance(err, dict) and isinstance(err.get("message"), str)


def _sse(text: str) -> list[tuple[str | None, object]]:
    out, event = [], None
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
            out.append((event, data if data == "[DONE]" else json.loads(data)))  # every data line is JSON
            event = None
    return out


def _outcome(dialect: str, stream: bool, r: httpx.Response) -> tuple[str, str]:
    """("ok" | "error", the text received); asserts the answer is well-formed."""
    assert r.status_code != 500, r.text
    if r.status_code != 200:
        assert _error_shape(dialect, r.json()), r.text
        return "error", ""
    if not stream:
        doc = r.json()
        if dialect == "anthropic":
            return "ok", "".join(b.get("text", "") for b in doc["content"])
        if dialect == "openai_chat":
            return "ok", doc["choices"][0]["message"]["content"] or ""
        if dialect == "openai_responses":
            assert doc["status"] in ("completed", "failed", "incomplete"), doc
            if doc["status"] == "failed":
                return "error", ""
            return "ok", "".join(c["text"] for o in doc["output"] if o["type"] == "message" for c in o["content"])
        return "ok", "".join(p.get("text", "") for p in doc["candidates"][0]["content"]["parts"])
    events = _sse(r.text)
    assert events, r.text
    if dialect == "anthropic":
        names = [e for e, _ in events]
        if "error" in names:
            assert names[-1] == "error" and _error_shape(dialect, events[-1][1]), r.text[-400:]
            return "error", ""
        assert names[-1] == "message_stop", r.text[-400:]
        return "ok", "".join(d["delta"].get("text", "") for e, d in events if e == "content_block_delta")
    if dialect == "openai_chat":
        data = [d for _, d in events if d != "[DONE]"]
        if any("error" in d for d in data):  # the SDK raises on it; it ends the stream ([DONE] or not)
            assert "error" in data[-1] and _error_shape(dialect, data[-1]), r.text[-400:]
            return "error", ""
        assert events[-1][1] == "[DONE]", r.text[-400:]
        return "ok", "".join((c["delta"].get("content") or "") for _, d in events[:-1] for c in d["choices"])
    if dialect == "openai_responses":
        last_event, last = events[-1]
        if last_event in ("response.failed", "error"):
            return "error", ""
        assert last_event == "response.completed", r.text[-400:]
        return "ok", "".join(d["delta"] for e, d in events if e == "response.output_text.delta")
    if any("error" in d for _, d in events):
        assert _error_shape(dialect, events[-1][1]), r.text[-400:]
        return "error", ""
    return "ok", "".join(p.get("text", "") for _, d in events for p in d["candidates"][0]["content"]["parts"])


@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault(gw, fake, fault, dialect):
    scripts, outcome, state = FAULTS[fault]
    for stream in (False, True):
        fake.clear_scripts()
        assert _admin(gw, "POST", "/credentials/1/reset").status_code == 200
        for script in scripts:
            fake.add_script(dict(script))
        r = _call(gw, dialect, stream)
        got, text = _outcome(dialect, stream, r)
        assert got in outcome.split("|"), (stream, got, r.text[-600:])
        if got == "ok":  # the whole text: the script's own, or the default reply on a retry
            assert text == (DEFAULT if fault in RETRIED else TEXT), (stream, text)
        assert _status(gw) in state.split("|"), (stream, _status(gw))
        RESULTS.setdefault(fault, {}).setdefault(dialect, 0)
        RESULTS[fault][dialect] += 1
    fake.clear_scripts()


def test_a_hanging_refresh_fails_within_the_bound_and_the_next_request_is_served(gw, fake):
    """The account's token is due, the refresh endpoint hangs: the client gets a clean error in
    about refreshTimeout (not a hang), and once the endpoint answers again the account serves."""
    fake.clear_scripts()
    _admin(gw, "POST", "/credentials/1/reset")
    pool = gw.app.state.gateway.pool
    fake.update_settings(refresh_delay=5.0)
    try:
        for dialect in DIALECTS:
            for cred in pool.credentials:
                cred.raw["expiresAt"] = "2020-01-01T00:00:00Z"  # due: the request must refresh first
            r = _call(gw, dialect, False)
            assert r.status_code in (502, 503, 504), r.text
            assert _error_shape(dialect, r.json()), r.text
            assert r.elapsed.total_seconds() < 4.5, r.elapsed
    finally:
        fake.update_settings(refresh_delay=0.0)
    _admin(gw, "POST", "/credentials/1/reset")
    assert _call(gw, "anthropic", False).status_code == 200
