"""A bounded soak: N minutes of mixed load with upstream faults, then the gateway's health.

    python -m bench.soak --minutes 5            # C=24 over the four dialects, stream and not
    python -m bench.soak --minutes 1 --conc 8   # a short one

The fake Kiro and the gateway run as subprocesses (three accounts, `logBodies` on, a small
`logRetentionCount` so retention has work to do). Every request draws a prompt: most are plain,
about one in eight carries a fault the fake is scripted to answer — one account throttled (the
gateway fails over), Kiro 500s, a reset mid-stream, a frame with a wrong CRC, a few stray bytes,
an exception frame. Each answer is checked (well-formed in its dialect; success or error as the
fault calls for). At the end, after the load has stopped and the gateway has idled: its RSS,
open sockets and fds, asyncio tasks and background errors against the baseline taken before
the load, state.db's size and rows, and every request accounted for (the client's count against
the gateway's own `kiro_gateway_requests` counter).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import time
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp
import orjson

from bench import procs

ADMIN = "bench-admin-key"
MODEL = "claude-sonnet-4-6"
TOKENS = ["soak-token-a", "soak-token-b", "soak-token-c"]
# marker → (fake script, the outcome a client must see)
FAULTS = {
    "FAULT-THROTTLE-A": ({"token": TOKENS[0], "status": 429}, "ok"),  # one account throttled: failover
    "FAULT-500": ({"status": 500}, "error"),
    "FAULT-RESET": ({"steps": [{"text": "partial ", "chunks": 2}, {"drop": True}]}, "error"),
    "FAULT-CRC": ({"steps": [{"text": "partial "}, {"bad_crc": "lost"}, {"text": "end"}]}, "error"),
    "FAULT-STRAY": ({"steps": [{"text": "every "}, {"garbage": 7}, {"text": "word"}]}, "ok"),
    "FAULT-EXCEPTION": ({"steps": [{"exception": {"type": "InternalServerException", "message": "boom"}}]}, "error"),
}
DIALECTS = ("anthropic", "openai_chat", "openai_responses", "gemini")


def _request(dialect: str, stream: bool, prompt: str) -> tuple[str, dict]:
    if dialect == "anthropic":
        return "/v1/messages", {"model": MODEL, "max_tokens": 64, "stream": stream,
                                "messages": [{"role": "user", "content": prompt}]}
    if dialect == "openai_chat":
        return "/v1/chat/completions", {"model": MODEL, "stream": stream, "messages": [{"role": "user",
                                                                                       "content": prompt}]}
    if dialect == "openai_responses":
        return "/v1/responses", {"model": MODEL, "stream": stream, "input": prompt, "store": False}
    path = "/v1beta/models/gemini-2.5-pro:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
    return path, {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


def _outcome(dialect: str, stream: bool, status: int, body: bytes) -> str:
    """"ok" | "error" for a well-formed answer; "malformed" otherwise."""
    try:
        if status >= 500 and status not in (502, 503, 504, 529):
            return "malformed"
        if status != 200:
            doc = orjson.loads(body)
            return "error" if ("error" in doc) else "malformed"
        if not stream:
            doc = orjson.loads(body)
            if dialect == "openai_responses" and doc.get("status") == "failed":
                return "error"
            return "ok"
        text = body.decode()
        datas = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:")]
        parsed = [orjson.loads(d) for d in datas if d != "[DONE]"]  # every data line is JSON
        if dialect == "anthropic":
            return "error" if "event: error" in text else ("ok" if "event: message_stop" in text else "malformed")
        if dialect == "openai_responses":
            if "event: response.failed" in text or "event: error" in text:
                return "error"
            return "ok" if "event: response.completed" in text else "malformed"
        if any("error" in p for p in parsed):
            return "error"
        if dialect == "openai_chat":
            return "ok" if datas and datas[-1] == "[DONE]" else "malformed"
        return "ok" if parsed else "malformed"
    except (ValueError, UnicodeDecodeError):
        return "malformed"


def _fds(pid: int) -> tuple[int, int]:
    fd_dir = Path(f"/proc/{pid}/fd")
    total = sockets = 0
    for fd in fd_dir.iterdir():
        total += 1
        try:
            sockets += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return total, sockets


def _metrics(port: int) -> dict[str, float]:
    """The soak's three figures from /metrics (procs.metrics), counters summed over their labels."""
    out: dict[str, float] = {}
    for name, value in procs.metrics(port).items():
        metric = name.split("{", 1)[0]
        if metric in ("kiro_gateway_requests_total", "kiro_gateway_background_errors_total"):
            out[metric] = out.get(metric, 0.0) + value
        elif metric == "kiro_gateway_event_loop_tasks":
            out[metric] = value
    return out


def _start(work: Path, fake_port: int, gw_port: int) -> tuple[procs.Proc, procs.Proc]:
    fake = procs.start_fake(work, fake_port, chunks=30)
    url = f"http://127.0.0.1:{fake_port}"
    config = {"host": "127.0.0.1", "port": gw_port, "apiKey": procs.API_KEY, "adminApiKey": ADMIN,
              "apiBaseUrl": url, "authBaseUrl": url, "oidcBaseUrl": url, "logBodies": True,
              "logRetentionCount": 2000, "cooldownSeconds": 2, "unhealthySeconds": 2, "failureLimit": 5,
              "firstTokenTimeout": 10, "usageOnStart": False, "loadBalancing": "balanced"}
    creds = [{"accessToken": t, "expiresAt": "2099-01-01T00:00:00Z", "refreshToken": "r" * 90 + t,
              "authMethod": "social"} for t in TOKENS]
    (work / "config.json").write_bytes(orjson.dumps(config))
    (work / "credentials.json").write_bytes(orjson.dumps(creds))
    argv = [*procs._cli(), "-c", str(work / "config.json"), "--credentials", str(work / "credentials.json")]
    gw = procs.Proc("gateway", argv, work / "gateway.log", work)
    procs._wait_http(gw, f"http://127.0.0.1:{gw_port}/health")
    scripts = [{**script, "match": marker, "times": -1} for marker, (script, _) in FAULTS.items()]
    req = urllib.request.Request(url + "/__fake/scripts", data=orjson.dumps(scripts),
                                 headers={"content-type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=5).read()
    return fake, gw


async def _load(port: int, seconds: float, conc: int, seed: int) -> tuple[Counter, int]:
    rng = random.Random(seed)
    results: Counter = Counter()
    sent = 0
    deadline = time.monotonic() + seconds
    headers = {"x-api-key": procs.API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}

    async def worker(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal sent
        i = 0
        while time.monotonic() < deadline:
            i += 1
            dialect, stream = rng.choice(DIALECTS), rng.random() < 0.7
            marker = rng.choice(list(FAULTS)) if rng.random() < 0.125 else None
            prompt = f"worker {n} request {i} " + (marker or "plain") + " " + "context " * rng.randint(1, 400)
            path, body = _request(dialect, stream, prompt)
            sent += 1
            try:
                async with session.post(f"http://127.0.0.1:{port}{path}", data=orjson.dumps(body),
                                        headers=headers) as r:
                    got = _outcome(dialect, stream, r.status, await r.read())
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                got = f"client error {type(e).__name__}"
            want = FAULTS[marker][1] if marker else "ok"
            results[(marker or "plain", "as expected" if got == want else got)] += 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=conc + 4)) as s:
        await asyncio.gather(*(worker(s, n) for n in range(conc)))
    return results, sent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--conc", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args(argv)
    procs.raise_fd_limit()
    work = procs.workdir()
    fake_port, gw_port = procs.free_port(), procs.free_port()
    fake, gw = _start(work, fake_port, gw_port)
    report: dict = {"minutes": a.minutes, "concurrency": a.conc}
    try:
        asyncio.run(_load(gw_port, 3.0, 4, a.seed + 1000))  # warm-up: imports, caches, first connections
        time.sleep(2.0)
        base = {"rss_mb": procs.rss_kb(gw.pid) / 1024, "fds_sockets": _fds(gw.pid), **_metrics(gw_port)}
        started = time.monotonic()
        results, sent = asyncio.run(_load(gw_port, a.minutes * 60, a.conc, a.seed))
        elapsed = time.monotonic() - started
        peak = procs.peak_rss_kb(gw.pid) / 1024
        time.sleep(3.0)  # idle: streams closed, the writer flushed, keep-alives dropped
        end = {"rss_mb": procs.rss_kb(gw.pid) / 1024, "fds_sockets": _fds(gw.pid), **_metrics(gw_port)}
        counted = end["kiro_gateway_requests_total"] - base["kiro_gateway_requests_total"]
        gw.stop()
        db = work / "state.db"
        size = sum(f.stat().st_size for f in work.glob("state.db*"))
        with sqlite3.connect(db) as con:
            rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - our own names
                    for t in ("logs", "agg", "health", "responses")}
        unexpected = {f"{k[0]}: {k[1]}": v for k, v in results.items() if k[1] != "as expected"}
        report.update({
            "requests": sent, "per_second": round(sent / elapsed, 1), "counted_by_gateway": int(counted),
            "unexpected": unexpected, "by_kind": {k[0]: v for k, v in results.items() if k[1] == "as expected"},
            "rss_mb": {"before": round(base["rss_mb"], 1), "peak": round(peak, 1), "after": round(end["rss_mb"], 1)},
            "fds": {"before": base["fds_sockets"][0], "after": end["fds_sockets"][0]},
            "sockets": {"before": base["fds_sockets"][1], "after": end["fds_sockets"][1]},
            "tasks": {"before": base.get("kiro_gateway_event_loop_tasks"),
                      "after": end.get("kiro_gateway_event_loop_tasks")},
            "background_errors": end.get("kiro_gateway_background_errors_total", 0.0),
            "state_db": {"bytes": size, "rows": rows},
        })
    finally:
        gw.stop()
        fake.stop()
        procs.remove_workdir(work)
    print(json.dumps(report, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))
    ok = (not report.get("unexpected") and report.get("counted_by_gateway") == report.get("requests")
          and report["sockets"]["after"] <= report["sockets"]["before"] + 2
          and report["tasks"]["after"] <= (report["tasks"]["before"] or 0) + 2
          and report["state_db"]["rows"]["logs"] <= 2000 * 1.1 + 200)  # retention, and one prune's slack
    print("soak:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
