"""Stats from the stored aggregates: per credential, model and dialect, now and as a 24-hour trend.

Aggregates are 5-minute buckets of counters and a latency histogram (state/base.py), so
percentiles are estimated within a bucket's bounds (linear interpolation, as Prometheus's
histogram_quantile does). Each credential also gets its credit burn rate over the window and, from
its usage limits when known, the date its quota runs out at that rate.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..pool.credential import format_expiry
from ..state.base import AGG_FIELDS, AGG_SIZE, BUCKET_SECONDS, LATENCY_BUCKETS, LATENCY_HIST, TTFB_HIST, add_vector, \
    split_agg_key

__all__ = ["build_stats", "percentile", "summary", "CredentialInfo", "NOW_WINDOW"]

NOW_WINDOW = 900  # "now" = the last 15 minutes
_I = {name: i for i, name in enumerate(AGG_FIELDS)}


@dataclass(slots=True)
class CredentialInfo:
    id: str
    status: str
    remaining: float | None = None  # credits left this period (getUsageLimits), if known
    next_reset: float | None = None


def percentile(hist: list[float], q: float) -> float | None:
    """The q-quantile (0..1) in seconds, or None without data."""
    total = sum(hist)
    if total <= 0:
        return None
    target, seen = q * total, 0.0
    for i, n in enumerate(hist):
        if n and seen + n >= target:
            lo = LATENCY_BUCKETS[i - 1] if i > 0 else 0.0
            if i >= len(LATENCY_BUCKETS):
                return lo  # beyond the last bound: the bound is all we know
            return lo + (LATENCY_BUCKETS[i] - lo) * ((target - seen) / n)
        seen += n
    return LATENCY_BUCKETS[-1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def summary(vec: list[float]) -> dict[str, Any]:
    n = vec[_I["requests"]]
    hist, ttfb_hist = vec[LATENCY_HIST], vec[TTFB_HIST]
    ttfb_n = vec[_I["ttfb_count"]]
    return {
        "requests": int(n),
        "errors": int(vec[_I["errors"]]),
        "errorRate": round(vec[_I["errors"]] / n, 4) if n else 0.0,
        "retries": int(vec[_I["retries"]]),
        "tokensIn": int(vec[_I["tokens_in"]]),
        "tokensOut": int(vec[_I["tokens_out"]]),
        "credits": round(vec[_I["credits"]], 4),
        "latencyMs": {"avg": _ms(vec[_I["latency_sum"]] / n) if n else None,
                      "p50": _ms(percentile(hist, 0.5)), "p90": _ms(percentile(hist, 0.9)),
                      "p99": _ms(percentile(hist, 0.99))},
        "ttfbMs": {"avg": _ms(vec[_I["ttfb_sum"]] / ttfb_n) if ttfb_n else None,
                   "p50": _ms(percentile(ttfb_hist, 0.5)), "p90": _ms(percentile(ttfb_hist, 0.9))},
    }


def _group(rows: Iterable[tuple[int, str, list[float]]], by: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for _, key, vec in rows:
        label = str(split_agg_key(key)[by])
        add_vector(out.setdefault(label, [0.0] * AGG_SIZE), vec)
    return out


def _burn(cred: CredentialInfo | None, credits: float, hours: float, now: float) -> dict[str, Any]:
    rate = credits / hours if hours > 0 else 0.0
    out: dict[str, Any] = {"creditsPerHour": round(rate, 4), "remaining": None, "runsOutAt": None, "resetsAt": None,
                           "lastsUntilReset": None}
    if cred is None:
        return out
    out["resetsAt"] = format_expiry(cred.next_reset) if cred.next_reset else None
    if cred.remaining is None:
        return out
    out["remaining"] = round(cred.remaining, 4)
    if rate > 0:
        runs_out = now + cred.remaining / rate * 3600
        out["runsOutAt"] = format_expiry(runs_out)
        if cred.next_reset:
            out["lastsUntilReset"] = runs_out >= cred.next_reset
    elif cred.next_reset:
        out["lastsUntilReset"] = True
    return out


def build_stats(aggs: dict[tuple[int, str], list[float]], creds: list[CredentialInfo], hours: int,
                now: float | None = None) -> dict[str, Any]:
    now = now or time.time()
    since = now - hours * 3600
    rows = [(b, k, v) for (b, k), v in aggs.items() if b + BUCKET_SECONDS > since]
    recent = [r for r in rows if r[0] + BUCKET_SECONDS > now - NOW_WINDOW]
    total = [0.0] * AGG_SIZE
    for _, _, v in rows:
        add_vector(total, v)
    current = [0.0] * AGG_SIZE
    for _, _, v in recent:
        add_vector(current, v)
    info = {c.id: c for c in creds}
    first_seen: dict[str, int] = {}
    for b, k, _ in rows:
        cid = split_agg_key(k)[2]
        first_seen[cid] = min(first_seen.get(cid, b), b)
    by_cred = _group(rows, 2)
    credentials = []
    for cid in sorted(set(by_cred) | set(info), key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c)):
        if cid == "-":
            continue  # requests that never reached a credential
        vec = by_cred.get(cid, [0.0] * AGG_SIZE)
        # Burn rate over the time this credential has data for (at least an hour: no wild extrapolation).
        observed = max(1.0, (now - first_seen.get(cid, now)) / 3600) if cid in first_seen else float(hours)
        observed = min(observed, float(hours))
        c = info.get(cid)
        credentials.append({"credential": cid, "status": c.status if c else "deleted", **summary(vec),
                            "burn": _burn(c, vec[_I["credits"]], observed, now)})
    trend = []
    start = int(now // 3600 * 3600) - (hours - 1) * 3600
    for h in range(hours):
        lo = start + h * 3600
        vec = [0.0] * AGG_SIZE
        for b, _, v in rows:
            if lo <= b < lo + 3600:
                add_vector(vec, v)
        s = summary(vec)
        trend.append({"hour": format_expiry(lo), "requests": s["requests"], "errors": s["errors"],
                      "tokensIn": s["tokensIn"], "tokensOut": s["tokensOut"], "credits": s["credits"],
                      "p50Ms": s["latencyMs"]["p50"], "p90Ms": s["latencyMs"]["p90"]})
    now_summary = summary(current)
    now_summary["requestsPerMinute"] = round(current[0] / (NOW_WINDOW / 60), 3)
    return {
        "window": {"hours": hours, "from": format_expiry(since), "to": format_expiry(now)},
        "totals": summary(total),
        "now": {"minutes": NOW_WINDOW // 60, **now_summary},
        "byCredential": credentials,
        "byModel": [{"model": m, **summary(v)} for m, v in sorted(_group(rows, 1).items())],
        "byDialect": [{"dialect": d, **summary(v)} for d, v in sorted(_group(rows, 0).items())],
        "trend": trend,
    }
