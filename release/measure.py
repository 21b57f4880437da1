"""The figures README gives for the binary: `python3 release/measure.py [BINARY]`.

Size in MB, and start-up time: from exec to /health answering 200, the median of five runs, for
`kiro-gateway` (an existing config, no account) and for `demo`. Each run gets an environment with
only HOME, TMPDIR and an empty PATH, as a machine without Python would give it.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import binary_path  # noqa: E402

RUNS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def startup(binary: Path, args: list[str], folder: Path, port: int) -> float:
    env = {"HOME": str(folder), "TMPDIR": str(folder), "PATH": str(folder / "empty")}
    started = time.monotonic()
    proc = subprocess.Popen([str(binary), *args], env=env, cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < 30:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.01)
            finally:
                conn.close()
        raise SystemExit(f"{binary} {' '.join(args)}: /health did not answer within 30 s")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def main() -> int:
    binary = Path(sys.argv[1]) if len(sys.argv) > 1 else binary_path()
    print(f"{binary.name}: {binary.stat().st_size / 1e6:.1f} MB")
    for name in ("kiro-gateway", "demo"):
        times = []
        for _ in range(RUNS):
            with tempfile.TemporaryDirectory() as d:
                folder = Path(d)
                (folder / "empty").mkdir()
                port = free_port()
                if name == "demo":
                    args = ["demo", "--port", str(port)]
                else:
                    (folder / "config.json").write_text(json.dumps({"apiKey": "measure", "usageOnStart": False}))
                    (folder / "credentials.json").write_text("[]")
                    args = ["-c", str(folder / "config.json"), "--port", str(port)]
                times.append(startup(binary, args, folder, port))
        print(f"{name}: start-up {statistics.median(times):.2f} s median of {RUNS} "
              f"({', '.join(f'{t:.2f}' for t in times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
