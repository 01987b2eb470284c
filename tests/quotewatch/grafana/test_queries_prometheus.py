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
