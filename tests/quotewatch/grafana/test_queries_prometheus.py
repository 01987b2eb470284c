"""The dashboards' PromQL against a real Prometheus, fed 20 minutes of synthetic pushes.

The data is pushed with qw_metrics' remote-write client at 15 s steps ending now, so each query
is evaluated the way Grafana would: variables substituted by `all_queries`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from quotewatch.grafana.build import build_all
from quotewatch.grafana.queries import all_queries
from quotewatch.metrics import LATENCY_BUCKETS, ROWS_BUCKETS
from qw_metrics import RemoteWriteClient
from support.prometheus import PrometheusServer, running_prometheus

pytestmark = pytest.mark.prometheus

STEP_S = 15
STEPS = 80  # 20 minutes
GAP_STEP = 60  # the first gap appears 5 minutes before the end
BOUND_STEPS = 8  # the frame log is at its bound for the last 2 minutes
WINDOW = {"environment": "e2e", "__range": "10m"}


def _registry() -> tuple[CollectorRegistry, dict[str, Any]]:
    registry = CollectorRegistry()
    metrics: dict[str, Any] = {
        "messages": Counter("coinbase_messages_received", "", ["type"], registry=registry),
        "expected": Counter("pipeline_rows_expected", "", ["table"], registry=registry),
        "written": Counter("iceberg_rows_written", "", ["table"], registry=registry),
        "pending": Gauge("pipeline_rows_pending", "", ["table"], registry=registry),
        "gaps": Counter("coinbase_sequence_gaps", "", ["product", "source"], registry=registry),
        "latency": Histogram(
            "pipeline_message_latency_seconds", "", buckets=LATENCY_BUCKETS, registry=registry
        ),
        "flush": Histogram(
            "iceberg_flush_duration_seconds",
            "",
            ["table"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        "flush_rows": Histogram(
            "iceberg_flush_rows", "", ["table"], buckets=ROWS_BUCKETS, registry=registry
        ),
        "labeler_size": Gauge("labeler_buffer_size", "", registry=registry),
        "labeler_capacity": Gauge("labeler_buffer_capacity", "", registry=registry),
        "wal_size": Gauge("wal_size_bytes", "", registry=registry),
        "wal_segments": Gauge("wal_segments", "", registry=registry),
        "wal_max": Gauge("wal_max_bytes", "", registry=registry),
        "wal_at_bound": Gauge("wal_at_bound", "", registry=registry),
        "wal_bytes": Counter("wal_bytes_written", "", registry=registry),
        "wal_fsync": Histogram(
            "wal_fsync_duration_seconds", "", buckets=LATENCY_BUCKETS, registry=registry
        ),
        "wal_unlogged": Counter("wal_frames_unlogged", "", registry=registry),
        "wal_replayed": Counter("wal_replayed_frames", "", registry=registry),
        "wal_derived_lost": Counter("wal_derived_frames_lost", "", ["table"], registry=registry),
    }
    return registry, metrics


def _step(metrics: dict[str, Any], step: int) -> None:
    m = metrics
    m["messages"].labels("l2update").inc(30)
    m["messages"].labels("heartbeat").inc(15)
    for table, written in (("raw_trades", 10), ("features", 9)):
        m["expected"].labels(table).inc(10)
        m["written"].labels(table).inc(written)
        m["pending"].labels(table).set(0)
        m["flush"].labels(table).observe(0.03)
        m["flush_rows"].labels(table).observe(written)
    for _ in range(45):
        m["latency"].observe(0.002)
    if step == GAP_STEP:
        m["gaps"].labels("BTC-USD", "trade_id").inc()
    m["labeler_size"].set(950)
    m["labeler_capacity"].set(1000)
    # The frame log: 1,000 B/s in 5 fsyncs/s of 3 ms; at its bound for the last 2 minutes, 2
    # frames/s unlogged; a replay at GAP_STEP (a new process) whose features series is new.
    at_bound = step > STEPS - BOUND_STEPS
    m["wal_size"].set(1 << 30 if at_bound else 5_000_000)
    m["wal_segments"].set(8 if at_bound else 1)
    m["wal_max"].set(1 << 30)
    m["wal_at_bound"].set(int(at_bound))
    m["wal_bytes"].inc(1000 * STEP_S)
    for _ in range(5 * STEP_S):
        m["wal_fsync"].observe(0.003)
    if at_bound:
        m["wal_unlogged"].inc(2 * STEP_S)
    if step == GAP_STEP:
        m["wal_replayed"].inc(1234)
        m["wal_derived_lost"].labels("features").inc(7)


@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[PrometheusServer, float]]:
    """A Prometheus holding 20 minutes of pushes for environment `e2e`, and the last push time."""
    registry, metrics = _registry()
    other, other_metrics = _registry()
    # Another application in the same environment, with some of the same metric names.
    second_app, second_metrics = _registry()
    end_ms = int(time.time() * 1000)
    start_ms = end_ms - STEPS * STEP_S * 1000
    with running_prometheus() as prom, RemoteWriteClient(prom.remote_write_url) as client:
        for step in range(STEPS + 1):
            _step(metrics, step)
            other_metrics["messages"].labels("l2update").inc(300)
            _step(second_metrics, GAP_STEP)  # a gap at every step
            second_metrics["expected"].labels("raw_trades").inc(1000)  # and nothing written
            at = start_ms + step * STEP_S * 1000
            for reg, environment, job in (
                (registry, "e2e", "quotewatch"),
                (other, "other", "quotewatch"),
                (second_app, "e2e", "billing"),
            ):
                labels = {"job": job, "instance": "test", "environment": environment}
                result = client.push(reg, external_labels=labels, timestamp_ms=at)
                assert result.sent > 0
                assert result.dropped == result.failed == 0
        yield prom, end_ms / 1000


def _queries(title: str) -> list[str]:
    return [
        expr
        for dashboard in build_all().values()
        for panel_title, expr in all_queries(dashboard, WINDOW)
        if panel_title == title
    ]


def test_every_query_is_valid_promql(prometheus: tuple[PrometheusServer, float]) -> None:
    prom, at = prometheus
    # One client for all queries: httpx.get() builds a new TLS context (~80 ms) per call.
    with httpx.Client(base_url=prom.url, timeout=10) as client:
        for dashboard in build_all().values():
            for title, expr in all_queries(dashboard, WINDOW):
                params = {"query": expr, "time": f"{at:.3f}"}
                answer = client.get("/api/v1/query", params=params)
                assert answer.status_code == 200, (title, expr, answer.text)
                assert answer.json()["status"] == "success", (title, expr)


def test_message_rate_is_per_type_and_per_environment(
    prometheus: tuple[PrometheusServer, float],
) -> None:
    prom, at = prometheus
    received, _invalid = _queries("Message rate")
    assert prom.query_values(received, by="type", at=at) == pytest.approx(
        {"l2update": 2.0, "heartbeat": 1.0}
    )


def test_completeness_per_table(prometheus: tuple[PrometheusServer, float]) -> None:
    prom, at = prometheus
    (expr,) = _queries("Data completeness")
    assert prom.query_values(expr, by="table", at=at) == pytest.approx(
        {"raw_trades": 100.0, "features": 90.0}
    )


def test_first_gap_counts_although_its_series_is_new(
    prometheus: tuple[PrometheusServer, float],
) -> None:
    prom, at = prometheus
    gaps, missed = _queries("Gaps detected")
    assert prom.query_values(gaps, by="source", at=at) == {"trade_id": 1.0}
    assert prom.query(missed, at=at) == []  # no series: the panel shows its "0"
    # Plain increase() misses the first increment of a series born in the window:
    plain = 'increase(coinbase_sequence_gaps_total{job="quotewatch", environment="e2e"}[10m])'
    assert prom.query(plain, at=at)[0]["value"][1] == "0"


def test_buffer_usage_in_percent(prometheus: tuple[PrometheusServer, float]) -> None:
    prom, at = prometheus
    labeler = _queries("Queue usage")[0]
    assert prom.query_value(labeler, at=at) == pytest.approx(95.0)


def test_latency_quantiles_fall_in_the_observed_bucket(
    prometheus: tuple[PrometheusServer, float],
) -> None:
    prom, at = prometheus
    for expr in _queries("Pipeline latency"):
        assert 0.001 < prom.query_value(expr, at=at) <= 0.0025


def test_flush_heatmap_has_one_series_per_bucket(
    prometheus: tuple[PrometheusServer, float],
) -> None:
    prom, at = prometheus
    (expr,) = _queries("Flush latency")
    by_le = prom.query_values(expr, by="le", at=at)
    assert len(by_le) == len(LATENCY_BUCKETS) + 1
    assert by_le["0.025"] == 0.0
    assert by_le["0.05"] == pytest.approx(2 / STEP_S)  # two tables flush once per step


def test_frame_log_panels(prometheus: tuple[PrometheusServer, float]) -> None:
    prom, at = prometheus
    (state,) = _queries("Frame log state")
    assert prom.query_value(state, at=at) == 1.0
    size, bound, segments = _queries("Frame log size")
    assert prom.query_value(size, at=at) == float(1 << 30)
    assert prom.query_value(bound, at=at) == float(1 << 30)
    assert prom.query_value(segments, at=at) == 8.0
    written, fsync = _queries("Frame log writes")
    assert prom.query_value(written, at=at) == pytest.approx(1000.0)
    assert 0.0025 < prom.query_value(fsync, at=at) <= 0.005
    (unlogged,) = _queries("Frames unlogged")
    # 2 frames/s over the 1 m rate window, all of it at the bound.
    assert prom.query_value(unlogged, at=at) == pytest.approx(120.0, rel=0.05)


def test_replay_counts_frames_and_a_derived_series_born_in_the_window(
    prometheus: tuple[PrometheusServer, float],
) -> None:
    prom, at = prometheus
    replayed, derived = _queries("Frame log replay at start")
    assert prom.query_value(replayed, at=at) == pytest.approx(1234.0, rel=0.05)
    # The features series appeared with the replay: counted in full, exactly.
    assert prom.query_values(derived, by="table", at=at) == {"features": 7.0}
