"""Run the gateway under granian (a Rust ASGI server) instead of uvicorn: the benchmark's way to
compare the two (`--server granian`; granian must be importable, e.g. `pip install granian`).
Not a supported way to run the gateway: only what the comparison needs.

    python -m bench.granian_serve -c config.json --credentials credentials.json
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-c", required=True)
    p.add_argument("--credentials", required=True)
    a = p.parse_args(argv)
    from granian import Granian
    from granian.constants import Interfaces, Loops

    cfg = orjson.loads(open(a.c, "rb").read())
    os.environ["KIRO_GATEWAY__WORKER_CONFIG"] = a.c
    os.environ["KIRO_GATEWAY__WORKER_CREDENTIALS"] = a.credentials
    Granian("kiro_gateway.cli:worker_app", address=cfg["host"], port=cfg["port"], interface=Interfaces.ASGI,
            factory=True, loop=Loops.uvloop, workers=1, runtime_threads=1, log_enabled=False).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
