"""Prometheus `/metrics`: the request log's figures as counters and histograms, plus pool gauges.

Counters come from the store's all-time aggregates, not from process memory: every gateway process
sharing a store reports the same totals, they survive restarts, and they match the request log
(both are written from the same records in the same batch). Labels stay bounded: the dialect, the
Kiro model (not the name a client typed), the credential id and the HTTP status. The pool gauges
(state, in flight, credits left) are this process's view.

Allowed from loopback clients, or from anywhere with `metricsKey` (x-api-key, Bearer or ?key=).
"""

from __future__ import annotations

import asyncio

import hmac
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric, \
    SummaryMetricFamily
from starlette.requests import Request

from ..pool.pool import CredentialPool
from ..state.base import StateStore
from ..util.heap import WATCH
from ..util.tasks import ERRORS
from ..web.readgate import ReadGate
from .requestlog import RequestLog
from ..state.base import AGG_FIELDS, AGG_SIZE, LATENCY_BUCKETS, LATENCY_HIST, add_vector, split_agg_key

__all__ = ["render_metrics", "metrics_allowed", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LOOPBACK = ("127.", "::1", "localhost")
_I = {name: i for i, name in enumerate(AGG_FIELDS)}
_STATES = ("active", "cooldown", "exhausted", "unhealthy", "disabled")


def metrics_allowed(request: Request, key: str | None) -> bool:
    host = request.client.host if request.client else ""
    if host.startswith(_LOOPBACK):
        return True
    if not key:
        return False
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization", "")
    if not given and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    given = given or request.query_params.get("key", "")
    return hmac.compare_digest(given.encode(), key.encode())


class _Snapshot:
    """A one-scrape collector over figures read just before."""

    def __init__(self, totals: dict[str, list[float]], pool: CredentialPool, requests: RequestLog,
                 gate: ReadGate) -> None:
        self.totals = totals
        self.pool = pool
        self.requests = requests
        self.gate = gate

    def collect(self) -> Iterator[Metric]:
        base = ["dialect", "model", "credential"]
        requests = CounterMetricFamily("kiro_gateway_requests", "Client requests answered, by outcome",
                                       labels=[*base, "status"])
        retries = CounterMetricFamily("kiro_gateway_retries", "Extra upstream attempts (failover and retries)",
                                      labels=[*base, "status"])
        tokens = CounterMetricFamily("kiro_gateway_tokens", "Tokens in and out", labels=[*base, "direction"])
        credits = CounterMetricFamily("kiro_gateway_credits", "Kiro credits used (meteringEvent)", labels=base)
        duration = HistogramMetricFamily("kiro_gateway_request_duration_seconds",
                                         "Time from request to the reply's end", labels=base)
        ttfb = SummaryMetricFamily("kiro_gateway_time_to_first_byte_seconds",
                                   "Time until Kiro's first events arrived", labels=base)
        merged: dict[tuple[str, str, str], list[float]] = {}
        for key, vec in sorted(self.totals.items()):
            d, m, c, status = split_agg_key(key)
            requests.add_metric([d, m, c, str(status)], vec[_I["requests"]])
            if vec[_I["retries"]]:
                retries.add_metric([d, m, c, str(status)], vec[_I["retries"]])
            add_vector(merged.setdefault((d, m, c), [0.0] * AGG_SIZE), vec)
        for labels, vec in merged.items():
            tokens.add_metric([*labels, "in"], vec[_I["tokens_in"]])
            tokens.add_metric([*labels, "out"], vec[_I["tokens_out"]])
            credits.add_metric(list(labels), vec[_I["credits"]])
            cumulative, buckets = 0.0, []
            for le, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), vec[LATENCY_HIST], strict=True):
                cumulative += n
                buckets.append((le, cumulative))
            duration.add_metric(list(labels), buckets, vec[_I["latency_sum"]])
            ttfb.add_metric(list(labels), int(vec[_I["ttfb_count"]]), vec[_I["ttfb_sum"]])
        yield from (requests, retries, tokens, credits, duration, ttfb)
        yield from self._pool()
        yield from _reads(self.gate)

    def _pool(self) -> Iterator[Metric]:
        pool = self.pool
        state = GaugeMetricFamily("kiro_gateway_credential_state", "1 for the state each credential is in",
                                  labels=["credential", "state"])
        in_flight = GaugeMetricFamily("kiro_gateway_credential_in_flight", "Requests in flight (this process)",
                                      labels=["credential"])
        remaining = GaugeMetricFamily("kiro_gateway_credential_credits_remaining",
                                      "Credits left this period (getUsageLimits, when fetched)", labels=["credential"])
        for cred in pool.credentials:
            now_state = pool.status(cred)
            for s in _STATES:
                state.add_metric([cred.id, s], 1.0 if s == now_state else 0.0)
            in_flight.add_metric([cred.id], pool.health[cred.id].in_flight)
            usage = pool.usage.cached(cred)
            if usage is not None:
                remaining.add_metric([cred.id], usage.remaining)
        waiting = GaugeMetricFamily("kiro_gateway_queue_waiting", "Requests waiting for a free account (this process)",
                                    value=pool.pacer.waiting)
        dropped = CounterMetricFamily("kiro_gateway_log_dropped", "Request records dropped while the store was down",
                                      value=self.requests.dropped)
        background = CounterMetricFamily("kiro_gateway_background_errors",
                                         "Failures inside background tasks (each logged once, then counted)",
                                         labels=["task"])
        for task, n in sorted(ERRORS.items()):
            background.add_metric([task], n)
        tasks = GaugeMetricFamily("kiro_gateway_event_loop_tasks", "asyncio tasks alive in this process "
                                  "(back to a baseline when idle; growth means a leak)", value=len(asyncio.all_tasks()))
        account_alerts = CounterMetricFamily("kiro_gateway_account_alerts",
                                             "Kiro's warnings about an account (this process)",
                                             labels=["credential", "reason"])
        for (cid, reason), n in sorted(pool.alerts.counts.items()):
            account_alerts.add_metric([cid, reason], n)
        gc_pause = CounterMetricFamily("kiro_gateway_gc_pause_seconds", "time spent in garbage collections, by "
                                       "generation (this process, since it started)", labels=["generation"])
        for gen, seconds in enumerate(WATCH.seconds):
            gc_pause.add_metric([str(gen)], seconds)
        gc_longest = GaugeMetricFamily("kiro_gateway_gc_pause_max_seconds", "the longest garbage collection "
                                       "pause of this process", value=WATCH.longest)
        yield from (state, in_flight, remaining, waiting, dropped, background, tasks, account_alerts, gc_pause,
                    gc_longest)


async def render_metrics(store: StateStore, pool: CredentialPool, requests: RequestLog, gate: ReadGate) -> bytes:
    totals = await store.totals()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(totals, pool, requests, gate))
    # The standard process_* (CPU, memory, file descriptors, start time) and python_* families.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return generate_latest(registry)


def _reads(gate: ReadGate) -> Iterator[Metric]:
    yield GaugeMetricFamily("kiro_gateway_pending_body_bytes", "Bytes of requests read and not yet answered "
                            "by Kiro (this process; pendingBodiesMb caps it)", value=gate.held)
    yield GaugeMetricFamily("kiro_gateway_read_waiting", "Connections whose next request waits unread "
                            "for room under pendingBodiesMb (this process)", value=gate.waiting)
    yield CounterMetricFamily("kiro_gateway_read_deferred", "Requests that waited unread for room under "
                              "pendingBodiesMb (this process, since it started)", value=gate.deferred)
    yield GaugeMetricFamily("kiro_gateway_read_wait_max_seconds", "The longest a request waited unread "
                            "(this process)", value=gate.longest_wait)
