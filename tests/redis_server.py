"""A throwaway redis-server on a free loopback port, for the team-mode tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from support import free_port


class RedisServer:
    def __init__(self, exe: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_redis() -> RedisServer:
    """A running server, or a skip (a failure on CI, which installs it: .ci/run)."""
    exe = shutil.which("redis-server")
    if not exe:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not on PATH (.ci/run installs it)")
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")
    return RedisServer(exe)
