"""The closed-loop load generator: C workers, each sending requests back to back on its own
keep-alive connection, every reply read to the end and checked.

One cell = warm-up (discarded) then a measured phase that runs until at least `min_requests`
requests completed and `min_duration` seconds passed; no new request starts after that, and the
ones in flight are waited for (and counted). Gateway CPU is read from /proc before and after the
measured phase; its peak RSS is VmHWM after a reset (clear_refs), plus VmRSS sampled every 50 ms.

Checking every reply exactly but cheaply: a target's `canonical(body)` drops what legitimately
differs between two identical requests (the Anthropic message id); a body whose canonical bytes
equal those of a body that passed the full check is intact too. Anything else is fully checked.
`--full-check` turns the shortcut off.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import asdict, dataclass, field

from . import procs
from .client import Response

__all__ = ["CellResult", "run_cell", "percentile", "merge_rounds"]

perf = time.perf_counter


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass
class CellResult:
    mode: str
    dialect: str
    stream: bool
    body: str
    body_bytes: int
    chunks: int
    chunk_delay_ms: float
    concurrency: int
    client: str
    requests: int = 0
    errors: int = 0
    duration_s: float = 0.0
    rps: float = 0.0
    ttfb_p50_ms: float = float("nan")
    ttfb_p99_ms: float = float("nan")
    total_p50_ms: float = float("nan")
    total_p99_ms: float = float("nan")
    gw_cpu_ms_per_req: float | None = None
    gw_peak_rss_mb: float | None = None
    fake_cpu_ms_per_req: float | None = None
    lg_cpu_ms_per_req: float | None = None
    gw_start_rss_mb: float | None = None  # gateway RSS when the measured phase began
    busy_cores: float | None = None  # whole machine, from /proc/stat, during the measured phase
    other_cores: float | None = None  # busy_cores minus gateway, fake and load generator
    # filled in against the floor (the direct cell of the same configuration)
    floor_rps_pct: float | None = None
    # req/s that 2 otherwise idle cores could sustain, from the measured CPU per request: each of
    # the (single-threaded) processes is capped at one core, and all of them share two.
    est_rps: float | None = None
    floor_est_pct: float | None = None
    added_ttfb_p50_ms: float | None = None
    added_ttfb_p99_ms: float | None = None
    tree: str = ""  # which gateway source: "" (this tree), or a baseline's label (--baseline)
    workers: int = 1  # gateway processes (>1, or team: team mode over Redis)
    team: bool = False
    server: str = "uvicorn"
    # garbage collections in the gateway during the measured phase, by generation (its /metrics)
    gc0: int | None = None
    gc1: int | None = None
    gc2: int | None = None
    gc_ms: float | None = None  # their pause time, when the gateway reports it
    gc_max_ms: float | None = None  # the longest pause since the gateway started
    fds_before: int | None = None  # open fds / asyncio tasks before the cell and after it settled
    fds_after: int | None = None
    tasks_before: int | None = None
    tasks_after: int | None = None
    rss_timeline: list[float] = field(default_factory=list)  # gateway RSS (MB) each second of the phase
    error_samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


_SUMMED = ("requests", "errors", "duration_s", "gc0", "gc1", "gc2", "gc_ms")
_HIGHEST = ("gw_peak_rss_mb", "gc_max_ms", "fds_after", "tasks_after")


def merge_rounds(results: list[CellResult]) -> list[CellResult]:
    """One result per cell out of several rounds: the median of each figure, the highest peak RSS,
    the sum of requests, errors and time; in the order the cells first ran."""
    groups: dict[tuple, list[CellResult]] = {}
    for r in results:
        key = (r.mode, r.dialect, r.stream, r.body, r.chunks, r.chunk_delay_ms, r.concurrency, r.client, r.tree,
               r.workers, r.team, r.server)
        groups.setdefault(key, []).append(r)
    out = []
    for rs in groups.values():
        merged = CellResult(**{k: v for k, v in asdict(rs[0]).items() if k != "error_samples"})
        for name, f in CellResult.__dataclass_fields__.items():
            values = [getattr(r, name) for r in rs]
            if name in _SUMMED:
                setattr(merged, name, None if any(v is None for v in values) else sum(values))
            elif name in _HIGHEST:
                setattr(merged, name, max((v for v in values if v is not None), default=None))
            elif f.type in ("float", "float | None") and all(v is not None for v in values):
                setattr(merged, name, percentile(values, 0.5))
        merged.error_samples = [e for r in rs for e in r.error_samples][:10]
        out.append(merged)
    return out


class _Checker:
    def __init__(self, target, stream: bool, expected, full: bool) -> None:
        self.target, self.stream, self.expected = target, stream, expected
        self.known: set[bytes] = set()
        self.full = full

    def __call__(self, resp: Response) -> str | None:
        if resp.status == 200 and not self.full:
            key = _canonical(self.target.name, self.stream, resp.body)
            if key is not None and key in self.known:
                return None
        else:
            key = None
        try:
            err = self.target.check(resp.status, resp.body, self.stream, self.expected)
        except Exception as e:  # noqa: BLE001 - an unparsable reply is an error like any other
            err = f"unparsable reply ({type(e).__name__}: {e}): {resp.body[:120]!r}"
        if err is None and key is not None and len(self.known) < 64:
            self.known.add(key)
        return err


def _canonical(name: str, stream: bool, body: bytes) -> bytes | None:
    if name == "direct":
        return body  # the fake's frames carry no per-request ids
    if name == "anthropic" and stream:
        cut = body.find(b"\n\n")  # message_start holds the random message id; the rest is fixed
        return body[cut:] if cut > 0 else None
    return None  # other dialects: always the full check


async def run_cell(res: CellResult, client, prepared, check: _Checker | None = None, *, target=None,
                   expected=None, full_check: bool = False, min_requests: int = 200,
                   min_duration: float = 5.0, warmup: float = 1.0, gateway_pid: int | None = None,
                   fake_pid: int | None = None, timeout: float = 600.0, gateway_port: int | None = None,
                   settle: float = 0.0) -> CellResult:
    """`gateway_port`: read its GC counts from /metrics around the measured phase (one process
    only); `settle`: after the phase, wait this long and record fds and tasks against before."""
    if check is None:
        check = _Checker(target, res.stream, expected, full_check)
    conc = res.concurrency
    conns: list = [None] * conc
    ttfb: list[float] = []
    total: list[float] = []
    state = {"done": 0, "errors": 0, "stop_at_n": 0, "stop_at_t": 0.0, "record": False}
    samples: list[str] = []

    async def worker(i: int) -> None:
        conn = conns[i]
        while True:
            if state["done"] >= state["stop_at_n"] and perf() >= state["stop_at_t"]:
                break
            t0 = perf()
            try:
                conn, resp = await client.request(conn, prepared)
                err = check(resp)
            except (OSError, ConnectionError, asyncio.IncompleteReadError) as e:
                conn, resp, err = None, None, f"{type(e).__name__}: {e}"
            except Exception as e:  # noqa: BLE001 - e.g. aiohttp client errors
                conn, resp, err = None, None, f"{type(e).__name__}: {e}"
            state["done"] += 1
            if err is not None:
                state["errors"] += 1
                if state["record"] and len(samples) < 5:
                    samples.append(err[:300])
                if resp is None:
                    await asyncio.sleep(0.05)  # do not spin on a dead server
            elif state["record"]:
                ttfb.append(resp.t_first - t0)
                total.append(resp.t_end - t0)
        conns[i] = conn

    async def phase(n: int, seconds: float) -> float:
        state["done"] = 0
        state["errors"] = 0
        state["stop_at_n"] = n
        t_start = perf()
        state["stop_at_t"] = t_start + seconds
        await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(conc))), timeout)
        return perf() - t_start

    multi = gateway_pid is not None and len(procs.tree_pids(gateway_pid)) > 1
    gw_cpu = procs.tree_cpu_seconds if multi else procs.cpu_seconds
    gw_rss = procs.tree_rss_kb if multi else procs.rss_kb
    if settle and gateway_pid and gateway_port:
        res.fds_before = procs.fd_count(gateway_pid)
        res.tasks_before = _tasks(await asyncio.to_thread(procs.metrics, gateway_port))

    # Warm-up: every connection opened and used at least once.
    if warmup > 0:
        await phase(conc, warmup)
    gc_before = await asyncio.to_thread(procs.metrics, gateway_port) if gateway_port and not multi else None

    rss_peak = 0
    stop_sampling = asyncio.Event()

    async def sample_rss() -> None:
        nonlocal rss_peak
        t0 = perf()
        while not stop_sampling.is_set():
            try:
                rss = gw_rss(gateway_pid)
            except OSError:
                return
            rss_peak = max(rss_peak, rss)
            if perf() - t0 >= len(res.rss_timeline):
                res.rss_timeline.append(round(rss / 1024, 1))
            try:
                await asyncio.wait_for(stop_sampling.wait(), 0.05)
            except TimeoutError:
                pass

    sampler = None
    mach0 = procs.machine_busy_seconds()
    if gateway_pid:
        res.gw_start_rss_mb = gw_rss(gateway_pid) / 1024
        procs.reset_peak(gateway_pid)
        gw0 = gw_cpu(gateway_pid)
        sampler = asyncio.create_task(sample_rss())
    if fake_pid:
        fk0 = procs.cpu_seconds(fake_pid)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    state["record"] = True
    elapsed = await phase(max(min_requests, conc), min_duration)
    state["record"] = False
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    mach1 = procs.machine_busy_seconds()
    gw1 = gw_cpu(gateway_pid) if gateway_pid else 0.0
    fk1 = procs.cpu_seconds(fake_pid) if fake_pid else 0.0
    n = state["done"]
    res.requests = n
    res.errors = state["errors"]
    res.error_samples = samples
    res.duration_s = round(elapsed, 3)
    res.rps = n / elapsed if elapsed > 0 else 0.0
    if ttfb:
        res.ttfb_p50_ms = percentile(ttfb, 0.5) * 1e3
        res.ttfb_p99_ms = percentile(ttfb, 0.99) * 1e3
        res.total_p50_ms = percentile(total, 0.5) * 1e3
        res.total_p99_ms = percentile(total, 0.99) * 1e3
    lg = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    res.lg_cpu_ms_per_req = lg * 1e3 / max(n, 1)
    if gateway_pid:
        stop_sampling.set()
        await sampler
        res.gw_cpu_ms_per_req = (gw1 - gw0) * 1e3 / max(n, 1)
        res.gw_peak_rss_mb = (max(rss_peak, 0 if multi else procs.peak_rss_kb(gateway_pid))) / 1024
    ours = lg
    if gateway_pid:
        ours += res.gw_cpu_ms_per_req * max(n, 1) / 1e3
    if fake_pid:
        fk = fk1 - fk0
        res.fake_cpu_ms_per_req = fk * 1e3 / max(n, 1)
        ours += fk
    per = [x for x in (res.gw_cpu_ms_per_req, res.fake_cpu_ms_per_req, res.lg_cpu_ms_per_req) if x]
    if per and res.chunk_delay_ms == 0:
        res.est_rps = min(min(1000.0 / x for x in per), 2000.0 / sum(per))
    if elapsed > 0:
        res.busy_cores = (mach1 - mach0) / elapsed
        res.other_cores = max(0.0, res.busy_cores - ours / elapsed)
    if gc_before is not None:
        _gc_delta(res, gc_before, await asyncio.to_thread(procs.metrics, gateway_port))
    for conn in conns:
        client.close_conn(conn)
    if settle and gateway_pid and gateway_port:
        await asyncio.sleep(settle)  # closed connections reach the gateway; its streams end
        res.fds_after = procs.fd_count(gateway_pid)
        res.tasks_after = _tasks(await asyncio.to_thread(procs.metrics, gateway_port))
    return res


def _tasks(m: dict[str, float]) -> int | None:
    v = m.get("kiro_gateway_event_loop_tasks")
    return None if v is None else int(v)


def _gc_delta(res: CellResult, before: dict[str, float], after: dict[str, float]) -> None:
    """GC collections per generation during the phase (prometheus-client's GCCollector), and
    their pause time when the gateway times them (kiro_gateway_gc_pause_seconds_total)."""
    for gen in (0, 1, 2):
        key = f'python_gc_collections_total{{generation="{gen}"}}'
        if key in before and key in after:
            setattr(res, f"gc{gen}", int(after[key] - before[key]))
    pause = [k for k in after if k.startswith("kiro_gateway_gc_pause_seconds_total")]
    if pause:
        res.gc_ms = sum(after[k] - before.get(k, 0.0) for k in pause) * 1e3
    if "kiro_gateway_gc_pause_max_seconds" in after:
        res.gc_max_ms = after["kiro_gateway_gc_pause_max_seconds"] * 1e3
