"""The command line: first run, file locations, environment overrides, --help."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kiro_gateway.config import ConfigError, load_settings, locate
from support import free_port


def launch(args: list[str], home: Path, cwd: Path, env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "HOME": str(home), **(env_extra or {})}
    env.pop("KIRO_GATEWAY_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "kiro_gateway.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_health(port: int, proc: subprocess.Popen) -> dict:
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("gateway did not come up")


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    return out


def test_first_run_creates_files_and_shows_the_key_once(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    port = free_port()
    proc = launch(["--port", str(port)], home, work)
    assert wait_health(port, proc)["status"] == "ok"
    out = stop(proc)
    cfg_path = home / ".kiro-gateway" / "config.json"
    creds_path = home / ".kiro-gateway" / "credentials.json"
    cfg = json.loads(cfg_path.read_text())
    assert json.loads(creds_path.read_text()) == []
    assert cfg["apiKey"] in out and cfg["host"] == "127.0.0.1"
    for p in (cfg_path, creds_path):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg_path.parent.stat().st_mode) == 0o700
    # Second run: nothing created, the key is not shown again, and it authenticates.
    proc = launch(["--port", str(port)], home, work)
    wait_health(port, proc)
    r = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"x-api-key": cfg["apiKey"]})
    assert r.status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"x-api-key": "nope"}).status_code == 401
    assert cfg["apiKey"] not in stop(proc)


def test_files_in_the_working_directory_win(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / "config.json").write_text(json.dumps({"apiKey": "local"}))
    paths = locate(None, None, cwd=work)
    assert paths.config == work / "config.json" and paths.credentials == work / "credentials.json"
    explicit = locate(str(tmp_path / "elsewhere.json"), None, cwd=work)
    assert explicit.credentials == tmp_path / "credentials.json"


def test_environment_overrides_config(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"port": 1234, "apiKey": "from-file", "region": "eu-west-1"}))
    s = load_settings(cfg, environ={"KIRO_GATEWAY_PORT": "4321", "KIRO_GATEWAY_API_KEY": "from-env",
                                    "KIRO_GATEWAY_MODEL_MAP": '{"gpt-4o": "claude-sonnet-4.5"}'})
    assert (s.port, s.api_key, s.region) == (4321, "from-env", "eu-west-1")
    assert s.model_map == {"gpt-4o": "claude-sonnet-4.5"}
    assert s.url("api_base_url") == "https://q.eu-west-1.amazonaws.com"


def test_invalid_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"port": "not a port"}))
    with pytest.raises(ConfigError, match="port"):
        load_settings(cfg, environ={})
    home = tmp_path / "h"
    home.mkdir()
    proc = launch(["-c", str(cfg)], home, tmp_path)
    assert proc.wait(timeout=15) == 2 and "port" in proc.stdout.read()


def test_help_lists_commands_and_environment():
    out = subprocess.run([sys.executable, "-m", "kiro_gateway.cli", "--help"], capture_output=True, text=True).stdout
    for word in ("--credentials", "fake-upstream", "demo", "KIRO_GATEWAY_API_KEY", "apiKey"):
        assert word in out
