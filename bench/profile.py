"""Profile the gateway's hot path with py-spy during the headline scenario.

`python -m bench --profile` runs Anthropic streaming, 80 KB body, 100 chunks, C=50 against the
gateway while `py-spy record --format raw --function` samples the gateway process (idle samples
excluded, so sample counts are CPU time). It prints:

- own time: the functions on top of the stack (where the CPU actually is),
- cumulative time: the functions anywhere on the stack (each counted once per sample),
- own time grouped by package/file area (kiro_gateway module, starlette, uvicorn, aiohttp, ...),

and keeps the collapsed stacks in bench/results/ (open them in https://www.speedscope.app or
feed them to flamegraph.pl). py-spy needs ptrace rights on the gateway (root, or
kernel.yama.ptrace_scope=0); install it with `pip install py-spy`.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

__all__ = ["profile_headline", "summarise", "load_raw"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3."):
        i = path.find(marker)
        if i >= 0:
            rest = path[i + len(marker):]
            return rest if marker == "site-packages/" else "stdlib/" + rest.split("/", 1)[-1]
    i = path.find("kiro_gateway/")
    return path[i:] if i >= 0 else path


def _area(frame: str) -> str:
    m = _FRAME.match(frame)
    f = _short(m.group("file")) if m else frame
    if f.startswith("kiro_gateway/"):
        return f
    if f.startswith("stdlib/"):
        return "stdlib/" + f.split("/")[1] if "/" in f[7:] else f
    return f.split("/")[0]


def _label(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    line = f":{m.group('line')}" if m.group("line") else ""
    return f"{m.group('func')} ({_short(m.group('file'))}{line})"


def load_raw(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        stack, _, n = line.rpartition(" ")
        try:
            stacks.append(([_label(f) for f in stack.split(";")], int(n)))
        except ValueError:
            continue
    return stacks


_IDLE_LEAVES = (("_worker (", "concurrent/futures/thread.py"), ("WorkerThread.run (", "anyio/"),
                ("Condition.wait (", "threading.py"), ("Event.wait (", "threading.py"))


def _idle_worker(frames: list[str]) -> bool:
    """A worker thread (executor, AnyIO, the state store's) blocked on its queue: py-spy's
    record mode sometimes counts it as active though /proc shows those threads using no CPU, so
    samples whose top frame is such a wait, outside the main thread, are dropped."""
    leaf = frames[-1]
    return frames[0].startswith("Thread._bootstrap") and any(leaf.startswith(f) and m in leaf
                                                             for f, m in _IDLE_LEAVES)


def summarise(stacks: list[tuple[list[str], int]], top: int = 30) -> dict:
    dropped = sum(n for f, n in stacks if _idle_worker(f))
    stacks = [(f, n) for f, n in stacks if not _idle_worker(f)]
    total = sum(n for _, n in stacks)
    own: Counter = Counter()
    cum: Counter = Counter()
    areas: Counter = Counter()
    for frames, n in stacks:
        own[frames[-1]] += n
        for f in set(frames):
            cum[f] += n
        m = _FRAME.match(frames[-1])
        areas[_area(frames[-1]) if m else frames[-1]] += n
    pct = lambda n: round(100.0 * n / total, 2) if total else 0.0  # noqa: E731
    gw_cum = [(f, n) for f, n in cum.most_common() if "kiro_gateway/" in f]
    return {
        "samples": total,
        "dropped_idle_executor_samples": dropped,
        "own": [(f, n, pct(n)) for f, n in own.most_common(top)],
        "cumulative": [(f, n, pct(n)) for f, n in cum.most_common(top + 10)],
        "gateway_cumulative": [(f, n, pct(n)) for f, n in gw_cum[:top]],
        "areas": [(a, n, pct(n)) for a, n in areas.most_common(top)],
    }


def print_summary(s: dict) -> None:
    print(f"\n{s['samples']} CPU samples of the gateway process ({s['dropped_idle_executor_samples']} samples "
          "of idle worker threads dropped)\n")
    for title, key in (("Top functions by OWN time (top of stack)", "own"),
                       ("Top functions by CUMULATIVE time (anywhere on the stack)", "cumulative"),
                       ("kiro_gateway functions by CUMULATIVE time", "gateway_cumulative"),
                       ("OWN time by area (package / gateway module)", "areas")):
        print(title)
        print(f"  {'%':>6}  {'samples':>7}  function")
        for f, n, p in s[key]:
            print(f"  {p:6.2f}  {n:7d}  {f}")
        print()


async def profile_headline(bench, a) -> dict:
    from bench.run import Cell, attach_floors, table

    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists() and not shutil.which("py-spy"):
        raise SystemExit("py-spy is not installed: pip install py-spy")
    out_dir = Path(__file__).resolve().parent / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = out_dir / f"profile-{stamp}.txt"
    seconds = a.profile_seconds

    scenario = a.profile
    if scenario == "headline":
        spec = ("anthropic", "80k", 100, 50, 0.0)
    elif scenario == "slow":
        spec = ("anthropic", "80k", 100, 500, 50.0)
    else:
        parts = scenario.split(":")
        spec = (parts[0], parts[1], int(parts[2]), int(parts[3]), float(parts[4]) if len(parts) > 4 else 0.0)
    name, size, chunks, conc, delay_ms = spec
    delay = delay_ms / 1e3
    # The floor first, so the table shows what the profiled run achieved relative to it.
    floor = await bench.run(Cell("direct", True, size, chunks, conc, delay,
                                 min_requests=conc if delay else None, min_duration=0.0 if delay else None))
    cell = Cell(name, True, size, chunks, conc, delay, min_duration=seconds + 2.0)

    async def spy() -> int:
        await asyncio.sleep(a.warmup + 0.5)
        proc = await asyncio.create_subprocess_exec(
            pyspy, "record", "--pid", str(bench.gateway.pid), "--duration", str(int(seconds)),
            "--rate", str(a.profile_rate), "--format", "raw", "--function", *(["--native"] if a.profile_native else []),
            "-o", str(raw),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode:
            print(out.decode(errors="replace"), file=sys.stderr)
        return proc.returncode

    res, rc = await asyncio.gather(bench.run(cell), spy())
    attach_floors([floor, res])
    print(f"\nProfile scenario: {name} stream, {size} body, {chunks} chunks, C={conc}, {delay_ms:g} ms between chunks")
    print("Profiled run (under py-spy sampling, so slightly slower than a clean run):")
    print(table([floor, res]))
    if rc or not raw.exists():
        raise SystemExit("py-spy failed (ptrace permission? try as root or set kernel.yama.ptrace_scope=0)")
    s = summarise(load_raw(raw))
    print_summary(s)
    print(f"collapsed stacks: {raw} (speedscope.app or flamegraph.pl)")
    return {"scenario": spec, "raw_file": str(raw), "summary": s, "cell": res.as_dict(), "floor": floor.as_dict()}


if __name__ == "__main__":  # re-summarise a saved profile: python -m bench.profile FILE [TOP]
    print_summary(summarise(load_raw(Path(sys.argv[1])), int(sys.argv[2]) if len(sys.argv) > 2 else 30))
