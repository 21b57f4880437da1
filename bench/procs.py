"""The fake Kiro and the gateway as subprocesses, and what /proc says about them."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

__all__ = ["Proc", "start_fake", "start_gateway", "free_port", "cpu_seconds", "rss_kb", "reset_peak",
           "peak_rss_kb", "raise_fd_limit", "API_KEY"]

API_KEY = "bench-key"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOFILE = 65536


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:  # as root the hard limit can go up too
        if hard != resource.RLIM_INFINITY and hard < NOFILE:
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    except (ValueError, OSError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli() -> list[str]:
    """The installed `kiro-gateway` console script of this interpreter, else `python -m`."""
    script = Path(sys.executable).with_name("kiro-gateway")
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "kiro_gateway.cli"]


class Proc:
    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log
        self._log = open(log, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                      preexec_fn=raise_fd_limit, start_new_session=True)
        self.pid = self.popen.pid

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


def _wait_http(proc: Proc, url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout} s:\n{proc.log_tail()}")


def start_fake(workdir: Path, port: int, chunks: int = 100, chunk_delay: float = 0.0) -> Proc:
    argv = [*_cli(), "fake-upstream", "--port", str(port), "--chunks", str(chunks),
            "--chunk-delay", str(chunk_delay), "--reply-chars", str(20 * chunks), "--no-record"]
    p = Proc("fake Kiro", argv, workdir / "fake.log", workdir)
    _wait_http(p, f"http://127.0.0.1:{port}/__fake/settings")
    return p


def start_gateway(workdir: Path, port: int, fake_url: str, log_level: str = "info",
                  launcher: list[str] | None = None) -> Proc:
    """The gateway via its CLI; `launcher` replaces the console script (e.g. bench.memprobe)."""
    config = {"host": "127.0.0.1", "port": port, "apiKey": API_KEY, "apiBaseUrl": fake_url,
              "authBaseUrl": fake_url, "oidcBaseUrl": fake_url, "logLevel": log_level}
    creds = [{"accessToken": "bench-access-token", "expiresAt": "2099-01-01T00:00:00Z",
              "refreshToken": "r" * 100, "authMethod": "social"}]
    (workdir / "config.json").write_bytes(orjson.dumps(config))
    (workdir / "credentials.json").write_bytes(orjson.dumps(creds))
    argv = [*(launcher or _cli()), "-c", str(workdir / "config.json"), "--credentials", str(workdir / "credentials.json")]
    p = Proc("gateway", argv, workdir / "gateway.log", workdir)
    _wait_http(p, f"http://127.0.0.1:{port}/health")
    return p


def set_fake(port: int, **settings) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/__fake/settings", data=orjson.dumps(settings),
                                 headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return orjson.loads(r.read())


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="kiro-bench-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def renice(pid: int, nice: int) -> None:
    """Nice the process and, with autogroup scheduling (sessions share CPU fairly whatever their
    processes' nice), its autogroup too; otherwise other sessions' work still takes its share."""
    os.setpriority(os.PRIO_PROCESS, pid, nice)
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass


# -- /proc ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (user+nice+system+irq+softirq+steal), /proc/stat."""
    with open("/proc/stat", "rb") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def _status_kb(pid: int, key: bytes) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    return _status_kb(pid, b"VmRSS:")


def peak_rss_kb(pid: int) -> int:
    return _status_kb(pid, b"VmHWM:")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False when not permitted."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
