"""util/heap.py: the collector's thresholds once started, the frozen start-up heap, the pause watch,
and that the gateway's command line applies them (the tests' in-process gateways do not)."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from kiro_gateway.util.heap import THRESHOLDS, GCWatch, parse_thresholds


def test_thresholds_parse_with_the_default_for_nothing():
    assert parse_thresholds(None) == parse_thresholds("") == THRESHOLDS
    assert parse_thresholds("700,10,10") == (700, 10, 10)
    with pytest.raises(ValueError):
        parse_thresholds("700,10")


def test_settle_freezes_and_raises_the_thresholds_in_a_process_of_its_own():
    code = ("import gc; from kiro_gateway.util.heap import settle; n = settle((12345, 6, 7)); "
            "print(n > 1000, gc.get_threshold(), gc.get_freeze_count() == n)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "(12345,", "6,", "7)", "True"]


def test_the_watch_counts_and_times_collections():
    watch = GCWatch()
    watch.install()
    watch.install()  # once only
    try:
        assert gc.callbacks.count(watch._callback) == 1
        gc.collect(0)
        gc.collect()
        assert watch.counts[0] >= 1 and watch.counts[2] >= 1
        assert watch.seconds[2] > 0 and watch.longest >= watch.seconds[2] / watch.counts[2]
    finally:
        gc.callbacks.remove(watch._callback)


def test_in_process_apps_leave_the_collector_alone(tmp_path):
    from starlette.testclient import TestClient

    from kiro_gateway.app import create_app
    from kiro_gateway.config import Settings

    before = gc.get_threshold()
    with TestClient(create_app(Settings(api_key="k", background_refresh=False), tmp_path / "credentials.json")) as c:
        assert c.get("/health").status_code == 200
        assert gc.get_threshold() == before
