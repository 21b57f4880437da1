"""`kiro-gateway client setup`: after it, each real CLI completes a turn through the gateway with
no environment variable of ours — only PATH and HOME (and, for Gemini CLI, a temp dir)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from test_claude_code import CLAUDE
from test_codex import CODEX
from test_gemini_cli import GEMINI

pytestmark = pytest.mark.e2e

# What a user's files may already hold (the offline switches the other e2e tests use): kept by setup.
CODEX_BEFORE = """\
approval_policy = "never"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[features]
plugins = false
remote_plugin = false
apps = false
"""
GEMINI_BEFORE = {"general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
                 "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False}, "ide": {"enabled": False}}


def need(binary: Path) -> Path:
    if not binary.exists():
        if os.environ.get("KG_REQUIRE_E2E") == "1":
            pytest.fail(f"{binary} not installed: run tests/e2e/install_clis.sh")
        pytest.skip(f"{binary.name} not installed (tests/e2e/install_clis.sh)")
    return binary


def setup(client: str, home: Path, gateway, *extra: str) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
    r = subprocess.run([sys.executable, "-m", "kiro_gateway.cli", "client", "setup", client, "--url", gateway.base_url,
                        "--key", gateway.api_key, *extra], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def run(argv: list[str], home: Path, work: Path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **(extra_env or {})}
    with subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as popen:
        try:
            out, err = popen.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.communicate()
            pytest.fail(f"{argv[0]} did not finish within 90 s")
    return subprocess.CompletedProcess(argv, popen.returncode, out, err)


def dirs(tmp: Path) -> tuple[Path, Path]:
    home, work = tmp / "home", tmp / "work"
    home.mkdir()
    work.mkdir()
    return home, work


def turns(fake) -> list[dict]:
    return [r for r in fake.requests if r["path"] == "/generateAssistantResponse" and r["status"] == 200]


def test_claude_code_after_setup(gateway, clean_fake, tmp_path):
    claude = need(CLAUDE)
    home, work = dirs(tmp_path)
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text(json.dumps({"permissions": {"allow": ["Read"]}}))
    out = setup("claude-code", home, gateway)
    assert "settings.json.bak-" in out  # the old file was backed up
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    assert settings["permissions"] == {"allow": ["Read"]} and settings["env"]["ANTHROPIC_BASE_URL"] == gateway.base_url
    r = run([str(claude), "-p", "say hello", "--output-format", "json"], home, work)
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    assert "Hello from fake Kiro" in json.loads(r.stdout)["result"]
    assert turns(clean_fake)


def test_codex_after_setup(gateway, clean_fake, tmp_path):
    codex = need(CODEX)
    home, work = dirs(tmp_path)
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(CODEX_BEFORE)
    setup("codex", home, gateway)
    r = run([str(codex), "exec", "--skip-git-repo-check", "--json", "say hello"], home, work)
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    assert "Hello from fake Kiro" in r.stdout
    assert turns(clean_fake)


def test_gemini_cli_after_setup(gateway, clean_fake, tmp_path):
    gemini = need(GEMINI)
    home, work = dirs(tmp_path)
    (home / ".gemini").mkdir()
    (home / ".gemini" / "settings.json").write_text(json.dumps(GEMINI_BEFORE))
    out = setup("gemini", home, gateway)
    assert "--trust" in out  # where Gemini CLI reads the file is said
    r = run([str(gemini), "-p", "say hello", "--output-format", "json"], home, work, {"TMPDIR": str(tmp_path)})
    assert r.returncode != 0 and "GEMINI_API_KEY" in r.stdout + r.stderr  # an untrusted folder: not read
    setup("gemini", home, gateway, "--trust", str(tmp_path))
    assert json.loads((home / ".gemini" / "trustedFolders.json").read_text()) == {str(tmp_path.resolve()): "TRUST_FOLDER"}
    r = run([str(gemini), "-p", "say hello", "--output-format", "json"], home, work, {"TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    assert "Hello from fake Kiro" in json.loads(r.stdout)["response"]
    assert turns(clean_fake)


def test_print_shows_and_writes_nothing(gateway, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for client in ("claude-code", "codex", "gemini", "opencode"):
        out = setup(client, home, gateway, "--print")
        assert gateway.base_url in out and gateway.api_key in out
    assert list(home.iterdir()) == []
    setup("opencode", home, gateway)
    cfg = json.loads((home / ".config" / "opencode" / "opencode.json").read_text())
    provider = cfg["provider"]["kiro-gateway"]
    assert provider["options"] == {"baseURL": gateway.base_url + "/v1", "apiKey": gateway.api_key}
    assert cfg["model"].startswith("kiro-gateway/")
