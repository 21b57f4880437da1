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
           "peak_rss_kb", "raise_fd_limit", "API_KEY", "tree_pids", "tree_cpu_seconds", "tree_rss_kb", "fd_count",
           "metrics", "export_tree", "start_redis", "TREE"]

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


# The source tree whose kiro_gateway this benchmark imported (PYTHONPATH decides, not the
# editable install): the fake and, unless told otherwise, the gateway run from it too.
TREE = Path(__import__("kiro_gateway").__file__).resolve().parent.parent


def _cli() -> list[str]:
    """`python -m kiro_gateway.cli` of this interpreter; which tree it runs is PYTHONPATH's say."""
    return [sys.executable, "-m", "kiro_gateway.cli"]


def export_tree(ref: str, dest: Path) -> Path:
    """`kiro_gateway/` as it is at git `ref` (of the repository holding this tree), unpacked in
    `dest`: a baseline to run beside the current tree (no worktree, no checkout touched)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(TREE), "archive", ref, "kiro_gateway"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


class Proc:
    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path, tree: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log
        self._log = open(log, "wb")
        root = str(tree or TREE)
        path = os.environ.get("PYTHONPATH", "")
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=root + (os.pathsep + path if path else ""))
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
                  launcher: list[str] | None = None, tree: Path | None = None, workers: int = 1,
                  state_url: str | None = None) -> Proc:
    """The gateway via its CLI, from `tree` (default: this one); `launcher` replaces the CLI
    (e.g. bench.memprobe); `workers` > 1 or a `state_url` is team mode (Redis)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {"host": "127.0.0.1", "port": port, "apiKey": API_KEY, "apiBaseUrl": fake_url,
              "authBaseUrl": fake_url, "oidcBaseUrl": fake_url, "logLevel": log_level}
    if state_url:
        config["stateUrl"] = state_url
    creds = [{"accessToken": "bench-access-token", "expiresAt": "2099-01-01T00:00:00Z",
              "refreshToken": "r" * 100, "authMethod": "social"}]
    (workdir / "config.json").write_bytes(orjson.dumps(config))
    (workdir / "credentials.json").write_bytes(orjson.dumps(creds))
    argv = [*(launcher or _cli()), "-c", str(workdir / "config.json"), "--credentials", str(workdir / "credentials.json")]
    if workers > 1:
        argv += ["--workers", str(workers)]
    p = Proc("gateway", argv, workdir / "gateway.log", workdir, tree)
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


def tree_pids(pid: int) -> list[int]:
    """`pid` and its descendants (a `--workers` gateway: the supervisor and its workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def tree_rss_kb(pid: int) -> int:
    total = 0
    for p in tree_pids(pid):
        try:
            total += rss_kb(p)
        except OSError:
            pass
    return total


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def metrics(port: int) -> dict[str, float]:
    """The gateway's /metrics as {name{labels}: value} (numbers only)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A throwaway redis-server on a free loopback port (team mode); (process, URL)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("team mode needs redis-server (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--loglevel", "warning", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")
