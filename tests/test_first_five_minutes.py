"""What a new user trips over first: each mistake is one line naming the file or setting, in the
locale's language (English and Chinese when there is none), exit code 2, never a traceback — and
nothing announced before the check."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from support import free_port


LOCALE = ("LC_ALL", "LC_MESSAGES", "LANG")


def run(args: list[str], cwd: Path, env_extra: dict | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, with no locale (so bilingual messages) unless env_extra gives one."""
    env = {**os.environ, "HOME": str(cwd / "home"), **(env_extra or {})}
    for k in list(env):
        if (k.startswith("KIRO_GATEWAY_") or k in LOCALE) and k not in (env_extra or {}):
            env.pop(k)
    r = subprocess.run([sys.executable, "-m", "kiro_gateway.cli", *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=timeout)
    r.cwd = cwd  # type: ignore[attr-defined]
    return r


def refused(r: subprocess.CompletedProcess, language: str = "both") -> str:
    """The one line of a refusal (exit 2, stdout empty, no traceback; English / Chinese, or only the
    `language` asked for); the test's directory is written as ./ … and dropped."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == "", (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    chinese = any("\u4e00" <= ch <= "\u9fff" for ch in lines[0])
    assert chinese == (language != "en"), lines[0]
    if language == "both":
        assert " / " in lines[0], lines[0]
    return lines[0].replace(str(r.cwd) + "/", "")


@pytest.fixture
def work(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"port": free_port()}))
    return tmp_path


def test_malformed_credentials_is_one_line_naming_the_file(work):
    (work / "credentials.json").write_text('[{"refreshToken": "x",\n')
    line = refused(run([], work))
    assert line == ("kiro-gateway: credentials.json is not valid JSON (line 2 column 1: unexpected end of data) / "
                    "credentials.json 不是有效的 JSON（第 2 行第 1 列）")
    line = refused(run(["import", "--credentials", "credentials.json"], work))
    assert line.startswith("kiro-gateway import: credentials.json is not valid JSON (line 2 column 1")


def test_malformed_config_names_the_file(work):
    (work / "config.json").write_text("{port: 1}")
    line = refused(run([], work))
    assert line.startswith("kiro-gateway: config.json is not valid JSON (line 1 column 2")


def test_port_in_use_is_refused_before_any_banner(work):
    port = json.loads((work / "config.json").read_text())["port"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        line = refused(run([], work))
        assert line == (f"kiro-gateway: port {port} on 127.0.0.1 is already in use (another kiro-gateway?); choose "
                        f"another with --port / 127.0.0.1 的端口 {port} 已被占用（另一个 kiro-gateway？）；用 --port 换一个")
        line = refused(run(["demo", "--port", str(port)], work))
        assert line.startswith(f"kiro-gateway demo: port {port} on 127.0.0.1 is already in use")


def test_unreachable_redis_state_url(work):
    dead = free_port()
    (work / "config.json").write_text(json.dumps({"port": free_port(), "stateUrl": f"redis://:pw@127.0.0.1:{dead}"}))
    line = refused(run([], work))
    assert line == (f"kiro-gateway: stateUrl redis://…@127.0.0.1:{dead} is unreachable (ConnectionError); start Redis "
                    f"or fix stateUrl / 无法连接 stateUrl redis://…@127.0.0.1:{dead}；请启动 Redis 或修改 stateUrl")


def test_explicit_config_path_that_does_not_exist_needs_init(work):
    line = refused(run(["-c", "nowhere/config.json"], work))
    assert line == ("kiro-gateway: nowhere/config.json does not exist; check the path, or add --init to create it / "
                    "nowhere/config.json 不存在；请检查路径，或加 --init 创建")
    assert not (work / "nowhere").exists()


def test_import_from_a_path_that_does_not_exist(work):
    line = refused(run(["import", "--from-ide", "/nonexistent"], work))
    assert line == "kiro-gateway import: /nonexistent does not exist / /nonexistent 不存在"


def test_config_errors_name_the_setting_as_the_user_wrote_it(work):
    line = refused(run([], work, {"KIRO_GATEWAY_PORT": "eighty"}))
    assert line == ("kiro-gateway: KIRO_GATEWAY_PORT: Input should be a valid integer, unable to parse string as an "
                    "integer / 配置无效（见英文说明）")
    line = refused(run([], work, {"KIRO_GATEWAY_MODEL_MAP": "gpt-4o"}))
    assert line.startswith("kiro-gateway: KIRO_GATEWAY_MODEL_MAP: Input should be a valid dictionary")
    assert "JSON" not in line
    (work / "config.json").write_text(json.dumps({"proxyUrl": "ftp://x", "loadBalancing": "fastest"}))
    line = refused(run([], work))
    assert line == ("kiro-gateway: config.json: proxyUrl: must be http://, https://, socks5://, socks5h://, socks4:// or "
                    "socks4a://host:port; config.json: loadBalancing: Input should be 'priority', 'balanced', "
                    "'round_robin' or 'random' / 配置无效（见英文说明）")


ZH, EN = {"LANG": "zh_CN.UTF-8"}, {"LANG": "en_US.UTF-8"}


def test_a_chinese_or_english_locale_gets_its_language_only(work):
    (work / "config.json").write_text("{port: 1}")
    assert refused(run([], work, ZH), "zh") == "kiro-gateway: config.json 不是有效的 JSON（第 1 行第 2 列）"
    assert refused(run([], work, EN), "en") == ("kiro-gateway: config.json is not valid JSON (line 1 column 2: "
                                                 "unexpected character, expected a string key)")


def test_port_in_use_in_each_language(work):
    port = json.loads((work / "config.json").read_text())["port"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert refused(run([], work, ZH), "zh") == (f"kiro-gateway: 127.0.0.1 的端口 {port} 已被占用（另一个 "
                                                     "kiro-gateway？）；用 --port 换一个")
        assert refused(run([], work, EN), "en") == (f"kiro-gateway: port {port} on 127.0.0.1 is already in use "
                                                     "(another kiro-gateway?); choose another with --port")
        assert refused(run(["demo", "--port", str(port)], work, ZH), "zh").startswith(
            f"kiro-gateway demo: 127.0.0.1 的端口 {port} 已被占用")


def test_chinese_alone_keeps_what_only_the_english_said(work):
    line = refused(run([], work, {**ZH, "KIRO_GATEWAY_PORT": "eighty"}), "zh")
    assert line == ("kiro-gateway: 配置无效：KIRO_GATEWAY_PORT: Input should be a valid integer, unable to parse "
                    "string as an integer")
    line = refused(run(["import", "--from-ide", "/nonexistent"], work, ZH), "zh")
    assert line == "kiro-gateway import: /nonexistent 不存在"
    line = refused(run(["status"], work, ZH), "zh")
    assert line == "kiro-gateway status: 没有管理密钥：请用 --admin-key 指定，或在 config.json 中设置 adminApiKey"


def test_lc_all_then_lc_messages_then_lang(work):
    (work / "config.json").write_text("[]")
    english = "kiro-gateway: config.json must hold a JSON object"
    chinese = "kiro-gateway: config.json 必须是一个 JSON 对象"
    assert refused(run([], work, {**ZH, "LC_ALL": "C"}), "en") == english
    assert refused(run([], work, {**ZH, "LC_ALL": "POSIX"}), "en") == english
    assert refused(run([], work, {**EN, "LC_MESSAGES": "zh_TW.UTF-8"}), "zh") == chinese
    assert refused(run([], work, {**ZH, "LC_ALL": "", "LC_MESSAGES": ""}), "zh") == chinese  # empty is unset
    assert refused(run([], work, {"LANG": "C.UTF-8"}), "en") == english
    assert refused(run([], work, {**ZH, "LC_ALL": "fr_FR.UTF-8"})) == f"{english} / config.json 必须是一个 JSON 对象"


def test_localized_picks_one_language_or_both():
    from kiro_gateway.cli_errors import localized

    def pick(**environ):
        return localized("en", "中文", environ=environ)

    assert (pick(), pick(LANG=""), pick(LANG="de_DE.UTF-8")) == ("en / 中文",) * 3
    assert (pick(LANG="zh_CN.UTF-8"), pick(LANG="zh"), pick(LANG="zh_HK.Big5@stroke")) == ("中文",) * 3
    assert (pick(LANG="en_GB.UTF-8"), pick(LANG="C"), pick(LANG="POSIX"), pick(LANG="en")) == ("en",) * 4
    assert pick(LANG="zhx_XX") == pick(LANG="english") == "en / 中文"  # only zh and en themselves
    assert pick(LC_ALL="en_US.UTF-8", LC_MESSAGES="zh_CN.UTF-8", LANG="zh_CN.UTF-8") == "en"
    assert pick(LC_MESSAGES="zh_CN.UTF-8", LANG="en_US.UTF-8") == "中文"
    zh = {"LANG": "zh_CN.UTF-8"}
    assert localized("bad: x", "无效（见英文说明）", zh_alone="无效：x", environ=zh) == "无效：x"
    assert localized("bad: x", "无效（见英文说明）", zh_alone="无效：x", environ={}) == "bad: x / 无效（见英文说明）"
    assert localized("one", "一", sep="\n", environ={}) == "one\n一"


def test_warnings_speak_the_locale_too(work):
    cfg = json.loads((work / "config.json").read_text())
    (work / "config.json").write_text(json.dumps({**cfg, "loadBalanceing": "balanced"}))
    (work / "credentials.json").write_text(json.dumps([{"refreshToken": "r" * 40}]))
    assert ("kiro-gateway: 警告：config.json：未知的键 loadBalanceing 被忽略；是否想写 loadBalancing？"
            in _serve_briefly(work, env_extra=ZH).splitlines())
    assert ("kiro-gateway: warning: config.json: unknown key loadBalanceing is ignored; did you mean loadBalancing?"
            in _serve_briefly(work, env_extra=EN).splitlines())


def _serve_briefly(work: Path, args: list[str] | None = None, env_extra: dict | None = None) -> str:
    """Start, wait for /health, stop; what it printed on stderr."""
    port = json.loads((work / "config.json").read_text())["port"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRO_GATEWAY_") and k not in LOCALE}
    env.update(HOME=str(work / "home"), **(env_extra or {}))
    proc = subprocess.Popen([sys.executable, "-m", "kiro_gateway.cli", *(args or [])], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 15
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    return err.replace(f"{work}/", "")


def test_misspelt_key_and_unusable_entries_are_warned(work):
    cfg = json.loads((work / "config.json").read_text())
    (work / "config.json").write_text(json.dumps({**cfg, "loadBalanceing": "balanced"}))
    (work / "credentials.json").write_text(json.dumps([{"authMethod": "social"}, {"refreshToken": "r" * 40}]))
    err = _serve_briefly(work)
    assert ("kiro-gateway: warning: config.json: unknown key loadBalanceing is ignored; did you mean loadBalancing? / "
            "警告：config.json：未知的键 loadBalanceing 被忽略；是否想写 loadBalancing？") in err.splitlines()
    assert ("kiro-gateway: warning: credentials.json: entry 1 has no refreshToken (nor apiKey); it is ignored / "
            "警告：credentials.json：第 1 项没有 refreshToken（也没有 apiKey），已忽略") in err.splitlines()
    assert "entry 2" not in err


def test_missing_credentials_is_warned(work):
    err = _serve_briefly(work)
    assert ("kiro-gateway: warning: credentials.json does not exist: nothing to serve until you run `kiro-gateway "
            "import` or `kiro-gateway login` / 警告：credentials.json 不存在：在运行 `kiro-gateway import` 或 "
            "`kiro-gateway login` 之前无可用账号") in err.splitlines()


def test_import_pluralises():
    from kiro_gateway.cli_errors import plural

    assert (plural(1, "error"), plural(0, "error"), plural(2, "error")) == ("1 error", "0 errors", "2 errors")


def test_help_describes_every_dialect_aligned_and_version():
    out = subprocess.run([sys.executable, "-m", "kiro_gateway.cli", "--help"], capture_output=True, text=True).stdout
    assert "Anthropic Messages API" in out and "OpenAI Chat Completions" in out and "Gemini API" in out
    assert "--init" in out and "client setup" in out
    env_rows = [ln for ln in out.splitlines() if ln.startswith("  KIRO_GATEWAY_")]
    assert len({len(ln) - len(ln.split()[-1]) for ln in env_rows}) == 1  # the key column starts at one place
    for flag in ("-V", "--version"):
        r = subprocess.run([sys.executable, "-m", "kiro_gateway.cli", flag], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip().startswith("kiro-gateway 0.")
    out = subprocess.run([sys.executable, "-m", "kiro_gateway.cli", "demo", "--help"], capture_output=True, text=True).stdout
    assert "--port" in out and "default 8990" in out and "--api-key" in out and "--admin-key" in out


def test_demo_has_an_admin_api_and_leaves_no_temp_folder(tmp_path):
    port = free_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "kiro_gateway.cli", "demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 20
        while True:
            assert proc.poll() is None and time.time() < deadline
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/admin/credentials", headers={"x-api-key": "demo-admin"})
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert r.status_code == 200, r.text
        assert [p.name for p in tmp.iterdir() if p.name.startswith("kiro-gateway-demo-")]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert "admin key demo-admin" in out
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("kiro-gateway-demo-")]
    assert tempfile.gettempdir()  # (the test's own temp dir is untouched)


def test_own_write_back_is_not_a_detected_change(tmp_path, clean_fake):
    """A refresh writes credentials.json back; the watcher must not report that as a change."""
    from gateway_proc import GatewayProcess, write_config
    from support import API_KEY

    acct = clean_fake.add_account()
    cfg = write_config(tmp_path / "gw", clean_fake, [{"refreshToken": acct["refresh_token"], "authMethod": "social"}])
    gw = GatewayProcess(cfg).wait_up()
    try:
        r = httpx.post(gw.url + "/v1/messages", headers={"x-api-key": API_KEY}, timeout=20,
                       json={"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        creds = json.loads((tmp_path / "gw" / "credentials.json").read_text())
        assert creds[0].get("accessToken")  # written back
        time.sleep(1.0)  # the watcher's debounce, and a poll
    finally:
        gw.stop()
    log = gw.log.read_text()
    assert "change detected" not in log and "changes detected" not in log
