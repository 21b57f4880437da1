"""The one-file executable (`python3 release/build.py`) run with no Python around it.

Uses the binary named by KG_BINARY. Without it the module skips, unless KG_REQUIRE_E2E=1 (set by
.ci/run, which builds the binary first and names it), where it builds one with release/build.py.
Every process runs in an environment holding only HOME, TMPDIR and a PATH with nothing on it, so no
Python can be found, and the test checks that the Python it runs on is the one it carries.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from kiro_gateway import __version__
from kiro_gateway.core import tokencount
from support import free_port

ROOT = Path(__file__).resolve().parents[2]
MODEL = "claude-sonnet-4-6"
KEY, ADMIN = "binary-key", "binary-admin"
START_LIMIT = 20.0  # seconds from exec to /health answering; about one is usual
STOP_LIMIT = 5.0


@pytest.fixture(scope="module")
def binary(tmp_path_factory) -> Path:
    given = os.environ.get("KG_BINARY")
    if not given:
        if os.environ.get("KG_REQUIRE_E2E") != "1":
            pytest.skip("KG_BINARY is not set (build with `python3 release/build.py`, then KG_BINARY=dist/kiro-gateway-…)")
        done = subprocess.run([sys.executable, str(ROOT / "release" / "build.py")], capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stderr[-4000:]
        given = done.stdout.strip().splitlines()[-1]
    path = Path(given).resolve()
    assert path.is_file() and os.access(path, os.X_OK), f"{path} is not an executable file"
    return path


class Place:
    """A home, a temporary folder and an empty PATH: all the environment a process gets."""

    def __init__(self, root: Path) -> None:
        self.home, self.tmp, self.bin = root / "home", root / "tmp", root / "empty-bin"
        for d in (self.home, self.tmp, self.bin):
            d.mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        return {"HOME": str(self.home), "TMPDIR": str(self.tmp), "PATH": str(self.bin), **extra}


class Running:
    """One process of the binary, its output in a file."""

    def __init__(self, binary: Path, place: Place, *args: str, **env: str) -> None:
        self.log = place.home / f"out-{time.monotonic_ns()}.log"
        self.started = time.monotonic()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([str(binary), *args], env=place.env(**env), cwd=place.home,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, marker: str, timeout: float = START_LIMIT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in (text := self.text()):
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"exited ({self.proc.returncode}) before {marker!r}:\n{self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"no {marker!r} within {timeout} s:\n{self.text()}")

    def wait_healthy(self, port: int) -> float:
        """Seconds from exec to /health answering 200."""
        while time.monotonic() - self.started < START_LIMIT:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited ({self.proc.returncode}):\n{self.text()}")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.02)
        raise AssertionError(f"/health did not answer within {START_LIMIT} s:\n{self.text()}")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        """The exit code and the seconds it took to exit after `sig`."""
        t = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(STOP_LIMIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"still running {STOP_LIMIT} s after signal {sig}:\n{self.text()[-3000:]}") from None
        return self.proc.returncode, time.monotonic() - t

    def tree(self) -> list[int]:
        """This process and its descendants (the one-file launcher runs the program as its child)."""
        pids, i = [self.proc.pid], 0
        while i < len(pids):
            for task in Path(f"/proc/{pids[i]}/task").glob("*/children"):
                pids += [int(p) for p in task.read_text().split()]
            i += 1
        return pids


class Demo:
    def __init__(self, binary: Path, place: Place) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.run = Running(binary, place, "demo", "--port", str(self.port), "--api-key", KEY, "--admin-key", ADMIN)
        self.startup = self.run.wait_healthy(self.port)
        banner = self.run.wait_for("The fake answers")
        found = re.search(r"fake Kiro on (http://127\.0\.0\.1:\d+);", banner)
        assert found, banner
        self.fake_url = found.group(1)


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Place:
    return Place(tmp_path_factory.mktemp("binary"))


@pytest.fixture(scope="module")
def demo(binary, place):
    d = Demo(binary, place)
    yield d
    d.run.stop()


def _release_build():
    spec = importlib.util.spec_from_file_location("release_build", ROOT / "release" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_name_and_version_carry_the_release(binary, place):
    assert binary.name == _release_build().binary_path().name  # kiro-gateway-<version>-<os>-<arch>
    assert binary.name.startswith(f"kiro-gateway-{__version__}-")
    done = subprocess.run([str(binary), "--version"], env=place.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"kiro-gateway {__version__}", done


def test_the_demo_starts_and_health_shows_the_version(demo):
    print(f"demo up in {demo.startup:.2f} s")
    body = httpx.get(demo.url + "/health", timeout=10).json()
    assert body["status"] == "ok" and body["version"] == __version__ and body["credentials"] == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_it_runs_on_the_python_it_carries(demo, place):
    """No file of the Python this test runs on (nor of its venv) is loaded; libpython is the one the
    binary unpacked into its TMPDIR."""
    mapped: set[str] = set()
    for pid in demo.run.tree():
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        mapped |= {line.split(None, 5)[5] for line in maps.splitlines() if len(line.split(None, 5)) == 6}
    files = {m for m in mapped if m.startswith("/")}
    libpython = [f for f in files if "libpython" in f]
    assert libpython, sorted(files)
    for root in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        assert not [f for f in files if f.startswith(root + "/")], (root, sorted(files))
    assert all(f.startswith(str(place.tmp) + "/") for f in libpython), libpython


def test_status_reads_the_demo(binary, place, demo):
    done = subprocess.run([str(binary), "status", "--url", demo.url, "--admin-key", ADMIN], env=place.env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "1/1 credentials active" in done.stdout, done


def test_the_anthropic_sdk_streams_through_the_demo(demo):
    client = anthropic.Anthropic(base_url=demo.url, api_key=KEY, max_retries=0)
    with client.messages.stream(model=MODEL, max_tokens=100,
                                messages=[{"role": "user", "content": "Say hello"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "Hello from fake Kiro" in text and final.stop_reason == "end_turn"


def test_the_openai_sdk_streams_through_the_demo(demo):
    client = openai.OpenAI(base_url=demo.url + "/v1", api_key=KEY, max_retries=0)
    chunks = client.chat.completions.create(model=MODEL, stream=True, messages=[{"role": "user", "content": "hi"}])
    assert "Hello from fake Kiro" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_the_console_is_served_from_the_binary(demo):
    page = httpx.get(demo.url + "/admin/", timeout=10)
    assert page.status_code == 200 and "<title>kiro-gateway console</title>" in page.text
    assets = re.findall(r'(?:src|href)="(/admin/assets/[^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets), page.text
    for asset in assets:
        r = httpx.get(demo.url + asset, timeout=10)
        assert r.status_code == 200 and len(r.content) > 1000, asset
        assert r.headers["content-type"].startswith(("text/javascript", "text/css")), r.headers


def test_token_counts_come_from_the_bundled_tokenizer(demo, gateway):
    """The binary's figure is the tokenizer's, which this text's estimate is far from."""
    text = "0123456789abcdef" * 40
    assert tokencount.have_tokenizer() and abs(tokencount.count(text) - tokencount.estimate(text)) > 40
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}

    def counted(url: str, key: str) -> int:
        r = httpx.post(url + "/v1/messages/count_tokens", json=body, headers={"x-api-key": key}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["input_tokens"]

    assert counted(demo.url, KEY) == counted(gateway.base_url, gateway.api_key)  # the source's, tokenizer loaded


def test_login_then_serve_from_a_first_run(binary, place, demo):
    """`login builder-id` against the demo's fake Kiro, then `kiro-gateway` on its first run serves with
    that account; SIGINT stops it."""
    fake = {"KIRO_GATEWAY_OIDC_BASE_URL": demo.fake_url, "KIRO_GATEWAY_AUTH_BASE_URL": demo.fake_url}
    login = Running(binary, place, "login", "builder-id", "--no-browser", **fake)
    out = login.wait_for("Waiting for approval")
    code = re.search(r"user_code=([A-Z0-9-]+)", out)  # the verification URL, then the code on its own line
    assert code and re.search(r"Code / 代码: " + code.group(1), out), out
    r = httpx.post(demo.fake_url + "/__fake/logins/approve", json={"userCode": code.group(1)}, timeout=10)
    assert r.status_code == 200, r.text
    assert login.proc.wait(30) == 0, login.text()
    assert "Logged in: credential #1" in login.text()
    creds = place.home / ".kiro-gateway" / "credentials.json"
    assert [c["authMethod"] for c in json.loads(creds.read_text())] == ["idc"]

    port = free_port()
    serve = Running(binary, place, "--port", str(port), KIRO_GATEWAY_API_BASE_URL=demo.fake_url,
                    KIRO_GATEWAY_USAGE_ON_START="false", **fake)
    try:
        startup = serve.wait_healthy(port)
        print(f"kiro-gateway up in {startup:.2f} s")
        key = re.search(r"Your API key \(shown once; it is in config\.json\): (\S+)", serve.wait_for("Your API key"))
        assert key, serve.text()
        client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key=key.group(1), max_retries=0)
        reply = client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        assert "Hello from fake Kiro" in reply.content[0].text
    finally:
        rc, took = serve.stop(signal.SIGINT)
    assert rc in (0, -signal.SIGINT) and "Application shutdown complete" in serve.text(), (rc, serve.text())
    print(f"kiro-gateway stopped {took:.2f} s after SIGINT")


def test_the_desktop_command_says_it_is_not_in_the_binary(binary, place):
    done = subprocess.run([str(binary), "desktop"], env=place.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not part of the one-file binary" in done.stderr and "单文件" in done.stderr


def test_sigterm_stops_the_demo_and_leaves_nothing_behind(binary, tmp_path):
    """Exit 0 within a few seconds, the demo's temporary folder and the unpacked binary both removed."""
    own = Place(tmp_path)
    d = Demo(binary, own)
    assert any(own.tmp.iterdir())  # the unpacked program, the demo's credentials
    rc, took = d.run.stop(signal.SIGTERM)
    assert rc == 0, d.run.text()
    print(f"demo stopped {took:.2f} s after SIGTERM")
    assert list(own.tmp.iterdir()) == []


def test_workers_run_frozen(binary, tmp_path):
    """`--workers 2` starts its workers by running the binary again (multiprocessing's spawn)."""
    from redis_server import start_redis

    redis = start_redis()
    try:
        own = Place(tmp_path)
        folder = own.home / "gw"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"apiKey": KEY, "stateUrl": redis.url, "usageOnStart": False}))
        (folder / "credentials.json").write_text("[]")
        port = free_port()
        run = Running(binary, own, "-c", str(folder / "config.json"), "--port", str(port), "--workers", "2")
        try:
            run.wait_healthy(port)
            run.wait_for("Application startup complete", timeout=10)
            deadline = time.monotonic() + 10
            while run.text().count("Application startup complete") < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert run.text().count("Application startup complete") == 2, run.text()
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["version"] == __version__
        finally:
            rc, _ = run.stop(signal.SIGTERM)
        assert rc in (0, -signal.SIGTERM) and "Stopping parent process" in run.text(), (rc, run.text())
    finally:
        redis.stop()
