"""Which allocation sites hold the gateway's memory while 500 paced streams are in flight.

    python -m bench.memprobe [--size 80k] [--at 3.0] [--top 25] [--conc 500]

Runs the gateway (through its CLI) under tracemalloc, starts the slow scenario (500 Anthropic
streams, 100 chunks 50 ms apart), and `--at` seconds in, when every stream is open, makes the
gateway write a tracemalloc snapshot's top allocation sites (SIGUSR1). tracemalloc slows the
gateway down and adds its own overhead, so read the sizes relative to each other; the point is
where memory is held, not the RSS figure (that is what `python -m bench --slow` measures).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"  # noqa: A001


def serve(out: str, top: int, cli_args: list[str]) -> int:
    """Inside the gateway process: tracemalloc on, SIGUSR1 → top allocation sites into `out`."""
    import tracemalloc

    tracemalloc.start(12)

    def dump(signum, frame) -> None:
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        total = sum(s.size for s in snap.statistics("filename"))
        now, peak = tracemalloc.get_traced_memory()
        lines = [f"traced: {total / 2**20:.1f} MiB in Python allocations (peak so far {peak / 2**20:.1f} MiB)",
                 "", "by line:"]
        for st in snap.statistics("lineno")[:top]:
            fr = st.traceback[0]
            lines.append(f"{st.size / 2**20:8.2f} MiB {st.count:8d} blocks  {_short(fr.filename)}:{fr.lineno}")
        lines += ["", "by the innermost kiro_gateway / starlette / uvicorn / aiohttp frame that allocated:"]
        agg: dict[str, list[int]] = {}
        for st in snap.statistics("traceback"):
            key = next((f"{_short(f.filename)}:{f.lineno}" for f in reversed(st.traceback)
                        if any(p in f.filename for p in ("kiro_gateway", "starlette", "uvicorn", "aiohttp"))),
                       f"{_short(st.traceback[-1].filename)}:{st.traceback[-1].lineno}")
            a = agg.setdefault(key, [0, 0])
            a[0] += st.size
            a[1] += st.count
        for key, (size, count) in sorted(agg.items(), key=lambda kv: -kv[1][0])[:top]:
            lines.append(f"{size / 2**20:8.2f} MiB {count:8d} blocks  {key}")
        Path(out).write_text("\n".join(lines) + "\n")

    signal.signal(signal.SIGUSR1, dump)
    from kiro_gateway.cli import main

    return main(cli_args) or 0


def _short(path: str) -> str:
    for marker in ("site-packages/", "kiro_gateway/"):
        i = path.find(marker)
        if i >= 0:
            return path[i + len(marker):] if marker == "site-packages/" else path[i:]
    return path.rsplit("/lib/", 1)[-1]


async def drive(size: str, at: float, top: int, conc: int = 500) -> None:
    from bench import procs
    from bench.run import Bench, Cell, _install_loop, parse_args  # noqa: F401

    a = parse_args(["--no-restart"])
    bench = Bench(a)
    out = bench.workdir / "memprobe.txt"
    bench.fake = procs.start_fake(bench.workdir, bench.fake_port)
    bench.gateway = procs.start_gateway(
        bench.workdir, bench.gw_port, f"http://127.0.0.1:{bench.fake_port}",
        launcher=[sys.executable, str(Path(__file__).resolve()), "--serve", str(out), str(top), "--"])
    try:
        async def poke() -> None:
            await asyncio.sleep(at)
            os.kill(bench.gateway.pid, signal.SIGUSR1)
            print(f"snapshot requested at {at:g} s; gateway RSS then {procs.rss_kb(bench.gateway.pid) / 1024:.0f} MB",
                  flush=True)

        cell = Cell("anthropic", True, size, 100, conc, 0.05, warmup=0.0, min_requests=conc, min_duration=0.0)
        res, _ = await asyncio.gather(bench.run(cell), poke())
        for _ in range(100):
            if out.exists():
                break
            time.sleep(0.1)
        print(f"{res.requests} streams, {res.errors} errors, peak RSS {res.gw_peak_rss_mb:.0f} MB (under tracemalloc)\n")
        print(out.read_text() if out.exists() else "no snapshot written")
    finally:
        bench.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        out, top = argv[1], int(argv[2])
        rest = argv[argv.index("--") + 1:]
        return serve(out, top, rest)
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.memprobe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="80k")
    p.add_argument("--at", type=float, default=3.0, help="seconds into the run to take the snapshot")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--conc", type=int, default=500, help="concurrent streams (5000: the --slow5k scenario)")
    args = p.parse_args(argv)
    from bench import procs
    from bench.run import _install_loop

    procs.raise_fd_limit()
    _install_loop()
    asyncio.run(drive(args.size, args.at, args.top, args.conc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
