"""Bad input is answered as such, in the client's dialect: deep nesting, huge bodies, invalid
fields; a 500 says `Connection: close`; a 429 says when to come back."""

from __future__ import annotations

import http.client
import socket

import httpx
import pytest

from support import start_gateway

MODEL = "claude-sonnet-4-6"


def nest(depth: int) -> object:
    v: object = 1
    for _ in range(depth):
        v = {"a": v}
    return v


@pytest.fixture(scope="module")
def gw(fake, tmp_path_factory):
    acct = fake.add_account()
    g = start_gateway(fake, tmp_path_factory.mktemp("edge"), [{"refreshToken": acct["refresh_token"],
                                                               "authMethod": "social"}], usage_on_start=False)
    yield g
    g.server.stop()


def _post(gw, path: str, body, **headers) -> httpx.Response:
    h = {"x-api-key": gw.api_key, "anthropic-version": "2023-06-01", "authorization": f"Bearer {gw.api_key}", **headers}
    return httpx.post(gw.base_url + path, json=body, headers=h, timeout=20)


GEMINI = "/v1beta/models/gemini-2.5-pro:generateContent"
CASES = {  # dialect: (path, a valid body, where the error JSON keeps its message)
    "anthropic": ("/v1/messages", {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}),
    "count_tokens": ("/v1/messages/count_tokens", {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}),
    "openai_chat": ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}),
    "responses": ("/v1/responses", {"model": MODEL, "input": "x"}),
    "gemini": (GEMINI, {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}),
}


def _message(dialect: str, r: httpx.Response) -> str:
    return r.json()["error"]["message"]


@pytest.mark.parametrize("dialect", list(CASES))
@pytest.mark.parametrize("stream", [False, True])
def test_deep_nesting_is_a_400_in_each_dialect(gw, dialect, stream):
    path, good = CASES[dialect]
    body = {**good, "metadata" if dialect != "gemini" else "labels": nest(300)}
    if stream and dialect in ("anthropic", "openai_chat", "responses"):
        body["stream"] = True
    elif stream and dialect == "gemini":
        path = path.replace(":generateContent", ":streamGenerateContent")
    r = _post(gw, path, body)
    assert r.status_code == 400, r.text
    assert "nests deeper" in _message(dialect, r)
    if dialect == "anthropic":
        assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    if dialect == "gemini":
        assert r.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_responses_metadata_nested_253_deep(gw):
    for stream in (False, True):
        r = _post(gw, "/v1/responses", {"model": MODEL, "input": "x", "metadata": nest(253), "stream": stream})
        assert r.status_code == 400 and "nests deeper" in r.text, r.text


def test_kiro_tool_input_nested_300_deep_is_answered(gw, fake, clean_fake):
    deep = "{\"a\":" * 300 + "1" + "}" * 300
    payload = '{"toolUseId":"tooluse_deep","name":"Write","input":' + deep + "}"
    tools = [{"name": "Write", "description": "w", "input_schema": {"type": "object"}}]
    for stream in (False, True):
        fake.add_script({"steps": [{"event": {"type": "toolUseEvent", "payload": payload}},
                                   {"event": {"type": "toolUseEvent", "payload": {"toolUseId": "tooluse_deep",
                                                                                  "name": "Write", "stop": True}}}]})
        r = _post(gw, "/v1/messages", {"model": MODEL, "max_tokens": 10, "tools": tools, "stream": stream,
                                       "messages": [{"role": "user", "content": "write"}]})
        assert r.status_code == 200, r.text
        if stream:
            assert "event: message_stop" in r.text and "event: error" not in r.text, r.text[-500:]
        else:
            assert r.json()["stop_reason"] == "max_tokens"  # arguments no client could use: cut off


@pytest.mark.parametrize(("path", "body", "needle"), [
    ("/v1/messages", {"model": MODEL, "max_tokens": 10, "stream": "yes", "messages": [{"role": "user", "content": "x"}]},
     "stream"),
    ("/v1/chat/completions", {"model": MODEL, "stream": "yes", "messages": [{"role": "user", "content": "x"}]}, "stream"),
    ("/v1/responses", {"model": MODEL, "stream": "yes", "input": "x"}, "stream"),
    ("/v1/responses", {"model": MODEL, "input": []}, "empty array"),
    (GEMINI, {"contents": [{"role": "user"}]}, "parts"),
    (GEMINI, {"contents": [{"role": "user", "parts": []}]}, "parts"),
    (GEMINI, {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": 1e308}},
     "maxOutputTokens"),
])
def test_invalid_fields_are_400s(gw, path, body, needle):
    r = _post(gw, path, body)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]


def test_a_huge_chunked_body_is_refused_while_it_arrives(gw):
    """100 MB offered in chunks: the gateway answers 413 after ~32 MiB and stops reading."""
    host, port = "127.0.0.1", gw.server.port
    sock = socket.create_connection((host, port), timeout=20)
    sock.sendall(f"POST /v1/messages HTTP/1.1\r\nHost: {host}\r\nx-api-key: {gw.api_key}\r\n"
                 "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".encode())
    chunk = b"x" * (1 << 20)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    sock.settimeout(0.001)
    answer = b""
    try:
        while sent < 100 << 20:
            try:
                sock.sendall(frame)
                sent += len(chunk)
            except (BlockingIOError, socket.timeout, TimeoutError):
                pass
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                got = sock.recv(65536)
                if got:
                    answer += got
                    if b"\r\n\r\n" in answer:
                        break
            except (BlockingIOError, socket.timeout, TimeoutError):
                pass
        sock.settimeout(5)
        while b"\r\n\r\n" not in answer:
            got = sock.recv(65536)
            if not got:
                break
            answer += got
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert sent < 60 << 20, sent  # it did not wait for the whole 100 MB


def test_a_500_says_connection_close_and_the_next_request_works(gw):
    dialect = gw.app.state.gateway.dialects["anthropic"]
    original = dialect.parse

    def broken(*a, **kw):
        raise RuntimeError("a bug")

    dialect.parse = broken
    try:
        conn = http.client.HTTPConnection("127.0.0.1", gw.server.port, timeout=10)
        conn.request("POST", "/v1/messages", body=b'{"model":"m","max_tokens":1,"messages":[]}',
                     headers={"x-api-key": gw.api_key, "content-type": "application/json"})
        r = conn.getresponse()
        assert r.status == 500 and r.getheader("connection") == "close"
        assert b"Internal gateway error" in r.read()
        conn.close()
    finally:
        dialect.parse = original
    r = _post(gw, *CASES["anthropic"])
    assert r.status_code == 200


def test_a_429_says_when_to_come_back(fake, clean_fake, tmp_path):
    acct = fake.add_account()
    g = start_gateway(fake, tmp_path, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}],
                      usage_on_start=False, cooldown_seconds=120, max_attempts=1)
    try:
        fake.add_script({"status": 429, "times": -1})
        r = _post(g, *CASES["anthropic"])
        assert r.status_code == 429 and 100 <= int(r.headers["retry-after"]) <= 121, (r.status_code, r.headers)
        r = _post(g, *CASES["openai_chat"])  # the only account rests: still said, in another dialect
        assert r.status_code in (429, 503) and int(r.headers["retry-after"]) > 60, (r.status_code, r.headers, r.text)
    finally:
        fake.clear_scripts()
        g.server.stop()
