"""`kiro-gateway login` as a subprocess against the fake Kiro over a socket; approval through the
fake's control endpoint, as the person at the browser would give it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from support import free_port


def launch(fake, tmp_path: Path, *args: str, env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "KIRO_GATEWAY_OIDC_BASE_URL": fake.base_url,
           "KIRO_GATEWAY_AUTH_BASE_URL": fake.base_url, **(env_extra or {})}
    creds = tmp_path / "kiro" / "credentials.json"
    return subprocess.Popen([sys.executable, "-m", "kiro_gateway.cli", "login", *args, "-c", str(creds),
                             "--no-browser"], env=env, cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def read_until(proc: subprocess.Popen, marker: str, timeout: float = 15) -> list[str]:
    lines: list[str] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"exited early: {''.join(lines)}{proc.stderr.read()}")
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in {lines}")


def control(fake, action: str, **key) -> dict:
    r = httpx.post(fake.url(f"/__fake/logins/{action}"), json=key, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def credentials(tmp_path: Path) -> list[dict]:
    return json.loads((tmp_path / "kiro" / "credentials.json").read_text())


def test_builder_id_approved_writes_a_working_idc_credential(fake, tmp_path):
    proc = launch(fake, tmp_path, "builder-id")
    lines = read_until(proc, "Code /")
    code = lines[-1].split()[-1]
    assert any(f"user_code={code}" in line for line in lines)  # the verification URL, code filled in
    control(fake, "approve", userCode=code)
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert out.strip().splitlines()[-1].startswith("Logged in: credential #1") and "登录成功" in out
    path = tmp_path / "kiro" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    (cred,) = credentials(tmp_path)
    assert cred["authMethod"] == "idc" and cred["authRegion"] == "us-east-1"
    assert cred["startUrl"] == "https://view.awsapps.com/start"
    assert cred["clientSecret"] not in out + err and cred["refreshToken"] not in out + err
    # The refresh token works with the client it was issued to (what the pool will do).
    r = httpx.post(fake.url("/token"), json={"clientId": cred["clientId"], "clientSecret": cred["clientSecret"],
                                             "refreshToken": cred["refreshToken"], "grantType": "refresh_token"})
    assert r.status_code == 200 and r.json()["accessToken"]


def test_idc_denied_exits_non_zero_with_one_line_and_writes_nothing(fake, tmp_path):
    proc = launch(fake, tmp_path, "idc", "--start-url", "https://my-org.awsapps.com/start", "--region", "eu-west-1")
    code = read_until(proc, "Code /")[-1].split()[-1]
    control(fake, "deny", userCode=code)
    rc, out, err = finish(proc)
    assert rc == 1
    assert len(err.strip().splitlines()) == 1 and err.startswith("Login denied") and "拒绝" in err
    assert not (tmp_path / "kiro").exists()


def test_expired_code_exits_non_zero(fake, tmp_path):
    proc = launch(fake, tmp_path, "builder-id")
    code = read_until(proc, "Code /")[-1].split()[-1]
    control(fake, "expire", userCode=code)
    rc, _, err = finish(proc)
    assert rc == 1 and "expired" in err and "过期" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "kiro").exists()


def test_a_chinese_locale_gets_chinese_lines_only(fake, tmp_path):
    proc = launch(fake, tmp_path, "builder-id", env_extra={"LANG": "zh_CN.UTF-8"})
    lines = read_until(proc, "等待授权")
    assert lines[0] == "打开此网址并确认代码:\n" and lines[2].startswith("  代码: ") and lines[3] == "等待授权…\n"
    control(fake, "deny", userCode=lines[2].split()[-1])
    rc, out, err = finish(proc)
    assert rc == 1 and out == "" and err == "登录被拒绝：浏览器中拒绝了授权，未写入任何内容。\n"


def test_an_english_locale_gets_english_lines_only(fake, tmp_path):
    proc = launch(fake, tmp_path, "builder-id", env_extra={"LANG": "en_US.UTF-8"})
    lines = read_until(proc, "Waiting for approval")
    assert lines[0] == "Open this URL and confirm the code:\n" and lines[2].startswith("  Code: ")
    control(fake, "approve", userCode=lines[2].split()[-1])
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert out == f"Logged in: credential #1 (builder-id) added to {tmp_path / 'kiro' / 'credentials.json'}.\n"


def test_bad_arguments_exit_2(fake, tmp_path):
    proc = launch(fake, tmp_path, "idc", "--start-url", "http://not-https", "--region", "eu-west-1")
    rc, _, err = finish(proc)
    assert rc == 2 and "https" in err


def redirect_after_approval(fake, lines: list[str]) -> str:
    url = next(line.strip() for line in lines if "/login?" in line)
    assert httpx.get(url).status_code == 200  # the sign-in page opens
    state = parse_qs(urlsplit(url).query)["state"][0]
    return control(fake, "approve", state=state)["redirect"]


def test_social_with_the_pasted_url_when_the_callback_port_is_busy(fake, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = launch(fake, tmp_path, "social", "--provider", "google", "--callback-port", str(port))
        lines = read_until(proc, "press Enter")
        assert any("busy" in line for line in lines)
        redirect = redirect_after_approval(fake, lines)
        proc.stdin.write("not a url\n")  # a wrong paste is refused, and the login waits on
        proc.stdin.write(redirect + "\n")
        proc.stdin.flush()
        rc, out, err = finish(proc)
    assert rc == 0, err
    assert "no code and state" in err
    (cred,) = credentials(tmp_path)
    assert cred["authMethod"] == "social" and cred["provider"] == "Google" and cred["profileArn"]
    assert fake.account(cred["refreshToken"])["auth"] == "social"


def test_social_through_the_loopback_callback(fake, tmp_path):
    port = free_port()
    proc = launch(fake, tmp_path, "social", "--provider", "github", "--callback-port", str(port))
    lines = read_until(proc, "press Enter")
    redirect = redirect_after_approval(fake, lines)
    assert redirect.startswith(f"http://localhost:{port}/oauth/callback?")
    page = httpx.get(redirect.replace("localhost", "127.0.0.1"), timeout=10)  # the browser comes back
    assert page.status_code == 200 and "logged in" in page.text and "登录成功" in page.text
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert credentials(tmp_path)[0]["provider"] == "Github"


def test_social_denied(fake, tmp_path):
    port = free_port()
    proc = launch(fake, tmp_path, "social", "--provider", "github", "--callback-port", str(port))
    lines = read_until(proc, "press Enter")
    url = next(line.strip() for line in lines if "/login?" in line)
    assert httpx.get(url).status_code == 200
    redirect = control(fake, "deny", state=parse_qs(urlsplit(url).query)["state"][0])["redirect"]
    assert httpx.get(redirect.replace("localhost", "127.0.0.1"), timeout=10).status_code == 400
    rc, _, err = finish(proc)
    assert rc == 1 and "denied" in err and not (tmp_path / "kiro").exists()


def test_a_running_gateway_takes_the_cli_login_in_without_a_restart(fake, tmp_path):
    from support import own_account, start_gateway

    (tmp_path / "kiro").mkdir()
    gw = start_gateway(fake, tmp_path / "kiro", own_account(fake), admin_api_key="admin-key-for-cli-login",
                       usage_on_start=False)
    try:
        proc = launch(fake, tmp_path, "builder-id")
        control(fake, "approve", userCode=read_until(proc, "Code /")[-1].split()[-1])
        rc, out, err = finish(proc)
        assert rc == 0 and "credential #2" in out, err
        deadline = time.time() + 10
        while time.time() < deadline:
            listed = httpx.get(gw.base_url + "/api/admin/credentials",
                               headers={"x-api-key": "admin-key-for-cli-login"}).json()["credentials"]
            if len(listed) == 2:
                break
            time.sleep(0.1)
        assert [c["authMethod"] for c in listed] == ["social", "idc"]
    finally:
        gw.server.stop()
