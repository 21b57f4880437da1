"""Gateways as real subprocesses (`python -m kiro_gateway.cli`), for restart and team-mode tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support import API_KEY, free_port

ADMIN_KEY = "admin-key-for-process-tests"


def write_config(directory: Path, fake, credentials: list[dict] | dict, **config) -> Path:
    """config.json (pointing at the fake) and credentials.json in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    cfg = {"apiKey": API_KEY, "adminApiKey": ADMIN_KEY, "apiBaseUrl": fake.base_url, "authBaseUrl": fake.base_url,
           "oidcBaseUrl": fake.base_url, "usageOnStart": False, "firstTokenTimeout": 10, "pingInterval": 5,
           **config}
    path = directory / "config.json"
    path.write_text(json.dumps(cfg))
    creds = directory / "credentials.json"
    creds.write_text(json.dumps(credentials, indent=2))
    creds.chmod(0o600)
    return path


class GatewayProcess:
    def __init__(self, config: Path, port: int | None = None) -> None:
        self.config = config
        self.port = port or free_port()
        self.log = config.parent / f"gateway-{self.port}.log"
        env = {**os.environ, "HOME": str(config.parent), "PYTHONUNBUFFERED": "1"}
        for k in [k for k in env if k.startswith("KIRO_GATEWAY_")]:
            env.pop(k)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "kiro_gateway.cli", "-c", str(config),
                                          "--port", str(self.port), "--log-level", "info"],
                                         stdout=out, stderr=subprocess.STDOUT, env=env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_up(self, timeout: float = 20) -> "GatewayProcess":
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited:\n{self.log.read_text()}")
            try:  # http.client: polling with httpx would burn CPU the booting processes need
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
                conn.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"gateway did not come up:\n{self.log.read_text()}")

    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.url + "/api/admin" + path, headers={"x-api-key": ADMIN_KEY}, timeout=10, **kw)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no last flush."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"gateway did not shut down on SIGTERM:\n{self.log.read_text()[-3000:]}") from None


def start_all(configs: list[Path]) -> list[GatewayProcess]:
    """Several at once (they boot in parallel), each waited for."""
    procs = [GatewayProcess(c) for c in configs]
    try:
        for p in procs:
            p.wait_up()
    except BaseException:
        stop_all(procs)
        raise
    return procs


def stop_all(procs: list[GatewayProcess]) -> None:
    """Stop every one, then report the first that would not stop."""
    errors = []
    for p in procs:
        try:
            p.stop()
        except AssertionError as e:
            errors.append(e)
    if errors:
        raise errors[0]
