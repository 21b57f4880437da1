"""kiro-gateway benchmark runner.

    python -m bench --quick                  # headline numbers, ~1.5 min
    python -m bench                          # the full matrix (~10-15 min on 2 cores)
    python -m bench --profile                # py-spy profile of the headline scenario
    python -m bench --slow                   # 500 concurrent streams, 50 ms between chunks
    python -m bench --compare-clients        # raw vs aiohttp load-generator cost on the floor
    python -m bench --quick --json out.json  # also write every result as JSON

(`python bench/run.py ...` works the same.) See bench/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"  # noqa: A001

import orjson

from bench import procs
from bench.bodies import ALL_SIZES, ISSUE_SIZES, SIZES, anthropic_body
from bench.client import make_client
from bench.dialects import TARGETS
from bench.load import CellResult, merge_rounds, run_cell
from bench.report import attach_floors, comparison, comparison_markdown, print_errors, table, targets_report

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHARS_PER_CHUNK = 20
RSS_SLACK_MB = 40  # restart the gateway before a cell when it has grown more than this
# The issue's reference fake served ~350 req/s alone (80k, 100 chunks, C=50); ours, writing a whole
# reply at once, serves ~3500. Paced at 1.4 ms between chunks (a reply in ~140 ms, still ~50 times
# faster than Kiro streams) it serves ~340: the reference floor for the throughput target.
REFERENCE_DELAY = 0.0014


@dataclass(frozen=True)
class Cell:
    target: str
    stream: bool
    size: str
    chunks: int
    concurrency: int
    delay: float = 0.0  # seconds between the fake's frames
    warmup: float | None = None
    min_requests: int | None = None
    min_duration: float | None = None
    tree: str = ""  # "" = this tree; else the label of a --baseline tree
    workers: int = 1
    team: bool = False  # over Redis (always so with workers > 1)
    settle: float = 0.0  # after the cell: wait, then compare the gateway's fds and tasks with before
    server: str = "uvicorn"  # or "granian" (bench/granian_serve.py)

    @property
    def config(self) -> tuple:
        return (self.size, self.chunks, self.delay, self.concurrency)

    @property
    def gateway_key(self) -> tuple:
        return (self.tree, self.workers, self.team or self.workers > 1, self.server)


# -------------------------------------------------------------------------------------------------
# Matrices


def _with_floor(targets: list[str], size: str, chunks: int, conc: int, delay: float = 0.0,
                streams=(True, False), **kw) -> list[Cell]:
    out = []
    for name in targets:
        t = TARGETS[name]
        for stream in t.streams:
            if stream in streams:
                out.append(Cell(name, stream, size, chunks, conc, delay, **kw))
    return out


def slow_cells(targets: list[str], rounds: int = 2, size: str = "80k") -> list[Cell]:
    """500 concurrent streams, 100 chunks 50 ms apart (~5 s a stream), Anthropic streaming."""
    gw = "anthropic" if "anthropic" in targets else ([t for t in targets if t != "direct"][:1] or ["anthropic"])[0]
    return [Cell(name, True, size, 100, 500, 0.05, warmup=0.0, min_requests=500 * rounds, min_duration=0.0)
            for name in ("direct", gw)]


def quick_matrix(targets: list[str], slow_size: str = "80k") -> list[Cell]:
    d = ["direct"] + targets
    cells: list[Cell] = []
    # headline: 80 KB, 100 chunks, C=1 (added TTFB) and C=50 (throughput, CPU)
    cells += _with_floor(d, "80k", 100, 1, streams=(True,))
    cells += _with_floor(d, "80k", 100, 50)
    # the same against the reference floor (the fake paced like the issue's)
    cells += _with_floor(d, "80k", 100, 50, REFERENCE_DELAY, streams=(True,))
    # linearity: body size and reply length at C=50 (Anthropic streaming only)
    for size in ("2k", "400k"):
        cells += _with_floor(["direct", "anthropic"], size, 100, 50, streams=(True,))
    for chunks in (10, 1000):
        cells += _with_floor(["direct", "anthropic"], "80k", chunks, 50, streams=(True,))
    cells += slow_cells(targets, rounds=1, size=slow_size)
    return cells


def full_matrix(targets: list[str], sizes=SIZES, chunk_counts=(10, 1000), concs=(1, 50, 500),
                slow_size: str = "80k") -> list[Cell]:
    """Every dialect at the headline body/reply (80k, 100 chunks) at every concurrency; direct and
    Anthropic (stream and whole) over sizes x reply lengths x concurrencies; the slow scenario."""
    d = ["direct"] + targets
    base = ["direct"] + [t for t in targets if t == "anthropic"]
    cells: list[Cell] = []
    for conc in concs:
        cells += _with_floor(d, "80k", 100, conc)
    cells += _with_floor(d, "80k", 100, 50, REFERENCE_DELAY, streams=(True,))
    for size in sizes:
        for chunks in chunk_counts:
            for conc in concs:
                cells += _with_floor(base, size, chunks, conc)
    cells += slow_cells(targets, rounds=2, size=slow_size)
    return cells


SLOW5K = dict(concurrency=5000, delay=0.05, warmup=0.0, min_requests=5000, min_duration=0.0, settle=35.0)


def issue17_matrix(targets: list[str]) -> list[Cell]:
    """Issue 17's table: every dialect streaming at C=50 over 10k/60k/300k bodies x 10/100/1000
    chunks (each with its floor), the headline cell unpaced and paced, 1000 paced chunks, 5,000
    slow streams, and --workers 1 / 2 in team mode."""
    d = ["direct"] + targets
    cells: list[Cell] = []
    for size in ISSUE_SIZES:
        for chunks in (10, 100, 1000):
            cells += _with_floor(d, size, chunks, 50, streams=(True,))
    cells += _with_floor(["direct", "anthropic"], "80k", 100, 50)
    cells += _with_floor(["direct", "anthropic"], "80k", 100, 50, REFERENCE_DELAY, streams=(True,))
    cells += _with_floor(["direct", "anthropic"], "80k", 1000, 50, REFERENCE_DELAY, streams=(True,),
                         min_requests=100, min_duration=3.0)
    cells += [Cell(n, True, "80k", 100, **SLOW5K) for n in ("direct", "anthropic")]  # type: ignore[arg-type]
    cells += workers_cells()
    return cells


def workers_cells(sizes=("80k",)) -> list[Cell]:
    """The headline cell against the team-mode gateway at 1 and 2 workers (Redis in both)."""
    cells = []
    for size in sizes:
        cells.append(Cell("direct", True, size, 100, 50))
        cells += [Cell("anthropic", True, size, 100, 50, team=True, workers=n) for n in (1, 2)]
    return cells


def parse_cells(spec: str) -> list[Cell]:
    """`TARGET:SIZE:CHUNKS:C[:DELAY_MS][:whole]`, comma separated (see --cells)."""
    cells = []
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        f = item.split(":")
        whole = f[-1] == "whole"
        if whole:
            f = f[:-1]
        if len(f) not in (4, 5) or f[0] not in TARGETS or f[1] not in ALL_SIZES:
            raise SystemExit(f"bad cell {item!r}: TARGET:SIZE:CHUNKS:C[:DELAY_MS][:whole], "
                             f"targets {sorted(TARGETS)}, sizes {list(ALL_SIZES)}")
        delay = float(f[4]) / 1e3 if len(f) == 5 else 0.0
        cells.append(Cell(f[0], not whole, f[1], int(f[2]), int(f[3]), delay))
    return cells


# -------------------------------------------------------------------------------------------------
# Running


@dataclass
class _Gateway:
    """One gateway process the cells run against: a tree (this one or a baseline), in solo or team mode."""
    tree: Path
    port: int
    workdir: Path
    workers: int = 1
    state_url: str | None = None
    server: str = "uvicorn"
    proc: procs.Proc | None = None
    fresh_rss_mb: float = 0.0
    dirty: bool = False  # served a C>=500 cell: its RSS stays inflated


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.workdir = procs.workdir()
        self.fake_port = procs.free_port()
        self.fake = None
        self.fake_settings: tuple | None = None
        self._prepared: dict = {}
        self._expected: dict = {}
        self.trees: dict[str, Path] = {"": procs.TREE}  # label → source tree (--baseline adds one)
        self.gws: dict[tuple, _Gateway] = {}
        self.current: tuple = ("", 1, False, "uvicorn")
        self.redis = None
        self.redis_url: str | None = None
        self.gw_port = procs.free_port()  # the default gateway's

    @property
    def gateway(self) -> procs.Proc:
        """The gateway of the cell last run (the default one before any): profile, memprobe."""
        gw = self._gw(self.current)
        assert gw.proc is not None
        return gw.proc

    @gateway.setter
    def gateway(self, proc: procs.Proc) -> None:
        self._gw(self.current).proc = proc

    def _gw(self, key: tuple) -> _Gateway:
        if key not in self.gws:
            tree, workers, team, server = key
            name = "-".join(str(x) for x in ("gw", tree or "this", workers, "team" if team else "solo", server))
            port = self.gw_port if key == ("", 1, False, "uvicorn") else procs.free_port()
            if team and self.redis_url is None:
                self.redis, self.redis_url = procs.start_redis(self.workdir)
            # each team gateway its own Redis database: a baseline's state never meets this tree's
            db = sum(1 for k in self.gws if k[2])
            url = f"{self.redis_url.rsplit('/', 1)[0]}/{db}" if team and self.redis_url else None
            self.gws[key] = _Gateway(self.trees[tree], port, self.workdir / name, workers, url, server)
        return self.gws[key]

    def _launch(self, gw: _Gateway) -> None:
        gw.proc = procs.start_gateway(gw.workdir, gw.port, f"http://127.0.0.1:{self.fake_port}",
                                      self.args.gateway_log_level, tree=gw.tree, workers=gw.workers,
                                      state_url=gw.state_url,
                                      launcher=[sys.executable, "-m", "bench.granian_serve"] if gw.server == "granian"
                                      else None)
        if gw.workers > 1:
            _wait_workers(gw.proc.pid, gw.workers)
        for pid in procs.tree_pids(gw.proc.pid):
            self._nice(pid)
        gw.fresh_rss_mb = procs.tree_rss_kb(gw.proc.pid) / 1024
        gw.dirty = False

    def restart_gateway(self, key: tuple | None = None) -> None:
        """A fresh gateway process, so that peak RSS is not inherited from an earlier cell."""
        gw = self._gw(self.current if key is None else key)
        if gw.proc is not None:
            gw.proc.stop()
        self._launch(gw)

    def start(self, gateway: bool = True) -> None:
        self.fake = procs.start_fake(self.workdir, self.fake_port)
        self._nice(self.fake.pid)
        if gateway:
            self._launch(self._gw(self.current))

    def add_baseline(self, ref: str) -> str:
        """Register the baseline tree (a git ref, exported; or a directory); its label."""
        path = Path(ref)
        if (path / "kiro_gateway").is_dir():
            self.trees["base"] = path.resolve()
        else:
            self.trees["base"] = procs.export_tree(ref, self.workdir / "baseline")
        sha = subprocess.run(["git", "-C", str(procs.TREE), "rev-parse", "--short", ref], capture_output=True,
                             text=True).stdout.strip() if not path.is_dir() else str(path)
        print(f"baseline: {ref} ({sha}) from {self.trees['base']}; this tree: {procs.TREE}", flush=True)
        return "base"

    def _nice(self, pid: int) -> None:
        if self.args.nice:
            procs.renice(pid, self.args.nice)

    def stop(self) -> None:
        for p in [g.proc for g in self.gws.values()] + [self.fake]:
            if p is not None:
                p.stop()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)
        if not self.args.keep_workdir:
            procs.remove_workdir(self.workdir)

    def configure_fake(self, chunks: int, delay: float) -> None:
        if self.fake_settings != (chunks, delay):
            procs.set_fake(self.fake_port, default_chunks=chunks, chunk_delay=delay,
                           reply_chars=CHARS_PER_CHUNK * chunks)
            self.fake_settings = (chunks, delay)

    async def run(self, cell: Cell, client_kind: str | None = None) -> CellResult:
        a = self.args
        t = TARGETS[cell.target]
        self.configure_fake(cell.chunks, cell.delay)
        direct = t.mode == "direct"
        gw = None
        if not direct:
            self.current = cell.gateway_key
            gw = self._gw(cell.gateway_key)
            if gw.proc is None:
                self._launch(gw)
            elif not a.no_restart and (
                    gw.dirty or cell.concurrency >= 500
                    # grown (e.g. a dialect's response store): memory and GC cost would carry over
                    or procs.tree_rss_kb(gw.proc.pid) / 1024 > gw.fresh_rss_mb + RSS_SLACK_MB):
                self.restart_gateway()
            if cell.concurrency >= 500:
                gw.dirty = True
        port = self.fake_port if gw is None else gw.port
        client = make_client(client_kind or a.client, "127.0.0.1", port)
        body_src = anthropic_body(cell.size)
        key = (cell.target, cell.stream, cell.size)
        if key not in self._prepared:
            self._prepared[key] = t.body(body_src, cell.stream)
        body = self._prepared[key]
        ekey = (*key, cell.chunks)
        if ekey not in self._expected:
            self._expected[ekey] = t.expected(body_src, cell.stream, CHARS_PER_CHUNK * cell.chunks, cell.chunks)
        prepared = client.prepare(t.path(cell.stream, body_src), t.headers(procs.API_KEY), body)
        res = CellResult(t.mode, "kiro" if direct else t.name, cell.stream, cell.size, len(body), cell.chunks,
                         cell.delay * 1e3, cell.concurrency, client.name, tree="" if direct else cell.tree or "this",
                         workers=cell.workers, team=cell.team or cell.workers > 1, server=cell.server)
        conc = cell.concurrency
        min_req = cell.min_requests if cell.min_requests is not None else max(a.requests, 2 * conc if conc > 50 else 0)
        try:
            await run_cell(res, client, prepared, target=t, expected=self._expected[ekey], full_check=a.full_check,
                           min_requests=min_req,
                           min_duration=a.duration if cell.min_duration is None else cell.min_duration,
                           warmup=a.warmup if cell.warmup is None else cell.warmup,
                           gateway_pid=None if gw is None else gw.proc.pid, fake_pid=self.fake.pid,
                           gateway_port=None if gw is None else gw.port, settle=0.0 if gw is None else cell.settle)
        finally:
            await client.close()
        for p in (self.fake, None if gw is None else gw.proc):
            if p is not None and not p.alive():
                raise RuntimeError(f"{p.name} died during the run:\n{p.log_tail()}")
        return res


def _wait_workers(pid: int, n: int, timeout: float = 30.0) -> None:
    """uvicorn answers as soon as one worker listens: wait for all of them (and their start-up)."""
    deadline = time.monotonic() + timeout
    while len(procs.tree_pids(pid)) < n + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)


def with_baseline(cells: list[Cell], label: str) -> list[Cell]:
    """Each gateway cell twice, the baseline tree's run first, then this tree's, back to back;
    floors once."""
    out = []
    for c in cells:
        if TARGETS[c.target].mode == "direct":
            out.append(c)
        else:
            out += [dataclasses.replace(c, tree=label), c]
    return out


# -------------------------------------------------------------------------------------------------


def _install_loop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="headline cells + a one-round slow scenario (~1.5 min)")
    p.add_argument("--slow", action="store_true", help="only the 500-stream / 50 ms-delay scenario")
    p.add_argument("--profile", nargs="?", const="headline", default=None, metavar="SCENARIO",
                   help="py-spy profile of the gateway: 'headline' (default: Anthropic stream, 80k, 100 "
                        "chunks, C=50), 'slow' (500 streams, 50 ms between chunks) or "
                        "TARGET:SIZE:CHUNKS:C[:DELAY_MS] e.g. anthropic:80k:1000:50")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the cells this many times, interleaved, and report per cell the median of each "
                        "figure (peak RSS: the highest; requests and errors: the sum) — for a noisy machine")
    p.add_argument("--cells", default=None, metavar="SPEC",
                   help="run just these cells: comma list of TARGET:SIZE:CHUNKS:C[:DELAY_MS][:whole], "
                        "e.g. direct:80k:100:50,anthropic:80k:100:50 (give the floor as a 'direct' cell)")
    p.add_argument("--compare-clients", action="store_true", help="raw vs aiohttp load generator on the floor")
    p.add_argument("--issue17", action="store_true",
                   help="issue 17's table: each dialect streaming at C=50 over 10k/60k/300k bodies x 10/100/1000 "
                        "chunks, the headline unpaced and paced, 1000 paced chunks, 5,000 slow streams, workers 1/2")
    p.add_argument("--slow5k", action="store_true", help="only 5,000 concurrent streams, 50 ms between chunks")
    p.add_argument("--workers-scaling", action="store_true",
                   help="only the headline cell against --workers 1 and 2 (team mode, a throwaway redis-server)")
    p.add_argument("--servers", default=None, metavar="LIST",
                   help="run every gateway cell under each of these ASGI servers, interleaved: uvicorn,granian "
                        "(granian must be importable; bench/granian_serve.py)")
    p.add_argument("--baseline", metavar="REF", default=None,
                   help="also run every gateway cell against the gateway at git REF (or a directory holding a "
                        "kiro_gateway/ tree), interleaved cell by cell with this tree's: the before/after table")
    p.add_argument("--json", metavar="FILE", help="write all results (and the run's settings) as JSON")
    p.add_argument("--show", metavar="FILE", help="print the table and targets of a saved --json file; run nothing")
    p.add_argument("--markdown", action="store_true", help="with --show: the baseline comparison as a Markdown table")
    p.add_argument("--targets", default=None,
                   help="comma list of gateway dialects (default: every one whose package exists)")
    p.add_argument("--sizes", default=",".join(SIZES), help="full matrix body sizes (2k,80k,400k)")
    p.add_argument("--chunks", default="10,1000", help="full matrix reply lengths")
    p.add_argument("--conc", default="1,50,500", help="full matrix concurrencies")
    p.add_argument("--slow-size", default="80k", choices=SIZES, help="body size of the slow scenario")
    p.add_argument("--client", choices=("raw", "aiohttp"), default="raw", help="load generator HTTP client")
    p.add_argument("--requests", type=int, default=200, help="minimum requests per cell (default 200)")
    p.add_argument("--duration", type=float, default=None, help="minimum seconds per cell (default 5, quick 3)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell (discarded)")
    p.add_argument("--full-check", action="store_true", help="parse and compare every reply (no canonical cache)")
    p.add_argument("--profile-seconds", type=float, default=20.0)
    p.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--profile-native", action="store_true",
                   help="py-spy --native: C frames too (orjson, the GC, the event loop) under their Python callers")
    p.add_argument("--gateway-log-level", default="info")
    p.add_argument("--nice", type=int, default=0,
                   help="run fake, gateway and load generator at this niceness (e.g. -10 on a shared "
                        "machine, as root); 0 leaves priorities alone")
    p.add_argument("--no-restart", action="store_true",
                   help="do not restart the gateway around C>=500 cells (peak RSS then carries over)")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temp dir (configs, process logs)")
    a = p.parse_args(argv)
    if a.duration is None:
        a.duration = 3.0 if a.quick else 5.0
    return a


def _targets(a) -> list[str]:
    if a.targets:
        names = [n.strip() for n in a.targets.split(",") if n.strip()]
    else:
        names = [n for n, t in TARGETS.items() if t.mode == "gateway" and t.available()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown targets {unknown}; known: {sorted(TARGETS)}")
    return names


async def _probe(bench: Bench, names: list[str]) -> list[str]:
    """Keep the dialects whose route the running gateway answers (not 404/405)."""
    import urllib.error
    import urllib.request

    keep = []
    for n in names:
        t = TARGETS[n]
        body = anthropic_body("2k")
        req = urllib.request.Request(f"http://127.0.0.1:{bench.gw_port}{t.path(False, body)}",
                                     data=t.body(body, False), headers=t.headers(procs.API_KEY), method="POST")
        try:
            status = (await asyncio.to_thread(urllib.request.urlopen, req, timeout=30)).status
        except urllib.error.HTTPError as e:
            status = e.code
        if status in (404, 405):
            print(f"note: the gateway does not serve {n} ({t.path(False, body)} -> {status}); skipped")
        else:
            keep.append(n)
    return keep


async def main_async(a) -> int:
    from bench import profile as prof

    procs.raise_fd_limit()
    bench = Bench(a)
    results: list[CellResult] = []
    extra: dict = {}
    started = time.time()
    try:
        bench.start()
        names = await _probe(bench, _targets(a))
        if a.profile:
            extra["profile"] = await prof.profile_headline(bench, a)
            cells = []
        elif a.compare_clients:
            cells = []
            for kind in ("raw", "aiohttp"):
                for cell in (Cell("direct", True, "80k", 100, 50), Cell("direct", True, "80k", 100, 1)):
                    r = await bench.run(cell, kind)
                    results.append(r)
                    print(f"  {kind:8s} C={cell.concurrency:<3d} {r.rps:8.1f} req/s  load-generator CPU "
                          f"{r.lg_cpu_ms_per_req:.2f} ms/req  ttfb p50 {r.ttfb_p50_ms:.2f} ms  errors {r.errors}",
                          flush=True)
        elif a.cells:
            cells = parse_cells(a.cells)
        elif a.issue17:
            cells = issue17_matrix(names)
        elif a.slow5k:
            cells = [Cell(n, True, "80k", 100, **SLOW5K) for n in ("direct", "anthropic")]  # type: ignore[arg-type]
        elif a.workers_scaling:
            cells = workers_cells()
        elif a.slow:
            cells = slow_cells(names, rounds=2, size=a.slow_size)
        elif a.quick:
            cells = quick_matrix(names, a.slow_size)
        else:
            split = lambda s: [x for x in s.split(",") if x]  # noqa: E731
            cells = full_matrix(names, tuple(split(a.sizes)), tuple(int(x) for x in split(a.chunks)),
                                tuple(int(x) for x in split(a.conc)), a.slow_size)
        if a.servers:
            servers = [x.strip() for x in a.servers.split(",") if x.strip()]
            cells = [dataclasses.replace(c, server=sv) if TARGETS[c.target].mode != "direct" else c
                     for c in cells for sv in (servers if TARGETS[c.target].mode != "direct" else [None])]
        if a.baseline:
            cells = with_baseline(cells, bench.add_baseline(a.baseline))
        cells = cells * a.rounds
        for i, cell in enumerate(cells, 1):
            extra_label = (f" [{cell.tree or 'this'}]" if a.baseline and TARGETS[cell.target].mode != "direct" else "") + (
                f" [{cell.server}]" if a.servers and TARGETS[cell.target].mode != "direct" else "") + (
                f" workers={cell.workers}{' team' if cell.team else ''}" if cell.team or cell.workers > 1 else "")
            print(f"[{i}/{len(cells)}] {cell.target} {'stream' if cell.stream else 'whole'} {cell.size} "
                  f"{cell.chunks} chunks C={cell.concurrency} delay={cell.delay * 1e3:g}ms{extra_label}", end=" ",
                  flush=True)
            r = await bench.run(cell)
            results.append(r)
            print(f"-> {r.rps:.1f} req/s, {r.errors} errors", flush=True)
    finally:
        bench.stop()
    if a.rounds > 1:
        results = merge_rounds(results)
    attach_floors(results)
    if results:
        print()
        rounds = f", medians of {a.rounds} interleaved rounds" if a.rounds > 1 else ""
        print(f"kiro-gateway benchmark ({len(results)} cells{rounds}, {time.time() - started:.0f} s, client {a.client}, "
              f"{os.cpu_count()} CPUs); times in ms, CPU in ms per request, RSS in MB")
        print(table(results))
        rep = targets_report([r for r in results if r.tree in ("", "this")])
        if rep:
            print("\nTargets (this tree):")
            print("\n".join(rep))
        cmp = comparison(results)
        if cmp:
            print("\nBaseline -> this tree (interleaved, cell by cell):")
            print("\n".join(cmp))
        print_errors(results)
    if a.json:
        Path(a.json).write_bytes(orjson.dumps({
            "started": started, "argv": sys.argv, "cpus": os.cpu_count(), "python": sys.version,
            "results": [r.as_dict() for r in results], **extra}, option=orjson.OPT_INDENT_2))
        print(f"\nwrote {a.json}")
    return 1 if any(r.errors for r in results) else 0


def show(path: str, markdown: bool = False) -> int:
    data = orjson.loads(Path(path).read_bytes())
    fields = set(CellResult.__dataclass_fields__)
    results = [CellResult(**{k: v for k, v in r.items() if k in fields}) for r in data["results"]]
    for r in results:  # JSON null → NaN for the latency fields
        for k in ("ttfb_p50_ms", "ttfb_p99_ms", "total_p50_ms", "total_p99_ms"):
            if getattr(r, k) is None:
                setattr(r, k, float("nan"))
    if markdown:
        print(comparison_markdown(results))
        return 0
    print(table(results))
    cmp = comparison(results)
    if cmp:
        print("\nBaseline -> this tree (interleaved, cell by cell):")
        print("\n".join(cmp))
    rep = targets_report([r for r in results if r.tree in ("", "this")])
    if rep:
        print("\nTargets:")
        print("\n".join(rep))
    print_errors(results)
    return 0


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.show:
        return show(a.show, a.markdown)
    _install_loop()
    if a.nice:
        procs.renice(os.getpid(), a.nice)
    return asyncio.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
