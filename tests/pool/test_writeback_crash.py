"""Killing a writer at any instant never leaves the credentials file torn, missing or too open."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

# A single-threaded helper process forks one writer per trial and SIGKILLs it after a random
# delay, so kills land before, between and inside writes; the test checks the file each time.
HARNESS = r"""
import os, random, signal, sys, time
from kiro_gateway.util.files import write_json_atomic
path, rng = sys.argv[1], random.Random(1234)
for line in sys.stdin:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        i = 0
        while True:
            i += 1
            write_json_atomic(path, [{"refreshToken": "r" * 100, "accessToken": f"token-{i}",
                                      "pad": "x" * 200_000}])
            if i == 1:
                os.write(w, b"1")
    os.close(w)
    os.read(r, 1)  # at least one write completed
    os.close(r)
    time.sleep(rng.uniform(0, 0.004))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print("killed", flush=True)
"""


def test_writer_killed_at_random_points_never_corrupts_the_file(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps([{"refreshToken": "r" * 100, "accessToken": "token-0"}]))
    path.chmod(0o600)
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    trials, mid_write = 250, 0
    try:
        for _ in range(trials):
            harness.stdin.write("next\n")
            harness.stdin.flush()
            assert harness.stdout.readline() == "killed\n"
            data = json.loads(path.read_text())  # parses: never half-written, never missing
            assert data[0]["accessToken"].startswith("token-") and data[0]["refreshToken"] == "r" * 100
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            leftovers = [p for p in tmp_path.iterdir() if p.name != "credentials.json"]
            mid_write += bool(leftovers)  # a temp file left behind: the kill landed inside a write
            for p in leftovers:
                p.unlink()
    finally:
        harness.stdin.close()
        harness.wait(timeout=10)
    # The test only means something if some kills really interrupted a write.
    assert mid_write > 10, mid_write
