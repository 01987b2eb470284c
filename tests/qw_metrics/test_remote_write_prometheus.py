"""Push to a real Prometheus and query the values back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client.metrics_core import Metric
from qw_metrics import MetricsPusher, RemoteWriteClient
from support.prometheus import PrometheusServer, running_prometheus

pytestmark = pytest.mark.prometheus

LABELS = {"job": "rw-test", "instance": "test-host", "environment": "test"}


@pytest.fixture(scope="module")
def prom() -> Iterator[PrometheusServer]:
    with running_prometheus() as server:
        yield server


class QuantileCollector:
    """A custom collector exposing a summary with quantiles (prometheus_client's has none)."""

    def collect(self) -> Iterator[Metric]:
        metric = Metric("rw_custom_latency_seconds", "custom summary", "summary")
        metric.add_sample("rw_custom_latency_seconds", {"quantile": "0.5"}, 0.25)
        metric.add_sample("rw_custom_latency_seconds", {"quantile": "0.99"}, 1.5)
        metric.add_sample("rw_custom_latency_seconds_count", {}, 40.0)
        metric.add_sample("rw_custom_latency_seconds_sum", {}, 12.5)
        yield metric


def test_pushed_values_read_back_exactly(prom: PrometheusServer) -> None:
    registry = CollectorRegistry()
    events = Counter("rw_events", "events", ["kind"], registry=registry)
    level = Gauge("rw_level", "level", registry=registry)
    latency = Histogram("rw_latency_seconds", "latency", ["stage"], registry=registry)
    size = Summary("rw_size_bytes", "size", ["stage"], registry=registry)
    Info("rw_build", "build", registry=registry).info({"version": "1.2.3"})
    Enum("rw_state", "state", states=["up", "down"], registry=registry).state("down")
    registry.register(QuantileCollector())

    # Three pushes 15 s apart ending at a whole second shortly before now.
    end_ms = (time.time_ns() // 1_000_000_000 - 5) * 1000
    stamps = [end_ms - 30_000, end_ms - 15_000, end_ms]
    increments = [5, 3, 4]
    with RemoteWriteClient(prom.remote_write_url, timeout=5.0) as client:
        for step, (stamp, amount) in enumerate(zip(stamps, increments, strict=True)):
            events.labels("a").inc(amount)
            events.labels("b").inc(1)
            level.set(-2.5 * (step + 1))
            for _ in range(10):
                latency.labels("parse").observe(0.2)  # all in the (0.1, 0.25] bucket
            latency.labels("store").observe(3.0)
            size.labels("parse").observe(100.0 * (step + 1))
            result = client.push(registry, external_labels=LABELS, timestamp_ms=stamp)
            assert result.dropped == 0
            assert result.failed == 0
            assert result.sent > 0

    at = end_ms / 1000
    q = prom.query_value
    assert q('rw_events_total{kind="a"}', at=at) == 12.0
    assert q('rw_events_total{kind="b"}', at=at) == 3.0
    assert q("rw_level", at=at) == -7.5
    assert q('rw_latency_seconds_count{stage="parse"}', at=at) == 30.0
    assert q('rw_latency_seconds_sum{stage="parse"}', at=at) == pytest.approx(6.0)
    assert q('rw_latency_seconds_bucket{stage="parse",le="0.1"}', at=at) == 0.0
    assert q('rw_latency_seconds_bucket{stage="parse",le="0.25"}', at=at) == 30.0
    assert q('rw_latency_seconds_bucket{stage="store",le="+Inf"}', at=at) == 3.0
    assert q('rw_latency_seconds_bucket{stage="store",le="2.5"}', at=at) == 0.0
    # rank 15 of 30 in (0.1, 0.25] -> 0.1 + 0.15 * 15/30
    assert q('histogram_quantile(0.5, rw_latency_seconds_bucket{stage="parse"})', at=at) == (
        pytest.approx(0.175)
    )
    # 3 observations at 3.0, all in (2.5, 5.0]: the median interpolates to the middle.
    assert q('histogram_quantile(0.5, rw_latency_seconds_bucket{stage="store"})', at=at) == (
        pytest.approx(3.75)
    )
    assert q('rw_size_bytes_count{stage="parse"}', at=at) == 3.0
    assert q('rw_size_bytes_sum{stage="parse"}', at=at) == 600.0
    assert q('rw_custom_latency_seconds{quantile="0.99"}', at=at) == 1.5
    assert q("rw_custom_latency_seconds_count", at=at) == 40.0
    assert q('rw_build_info{version="1.2.3"}', at=at) == 1.0
    assert prom.query_values("rw_state", by="rw_state", at=at) == {"up": 0.0, "down": 1.0}

    # The window covers the three samples exactly, so increase() does not extrapolate.
    assert q('increase(rw_events_total{kind="a"}[30s])', at=at) == 7.0
    assert q('increase(rw_latency_seconds_count{stage="store"}[30s])', at=at) == 2.0

    series = prom.query('rw_events_total{kind="a"}', at=at)
    assert series[0]["metric"] == {"__name__": "rw_events_total", "kind": "a", **LABELS}
    assert prom.query('{__name__=~"rw_.*_created"}', at=at) == []


def test_pusher_delivers_in_the_background_and_reports_itself(prom: PrometheusServer) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("rw_pusher_level", "level", registry=registry)
    gauge.set(42.0)
    client = RemoteWriteClient(prom.remote_write_url, timeout=5.0)
    with MetricsPusher(client, registry, interval=0.1, external_labels=LABELS):
        time.sleep(0.35)
        gauge.set(43.0)
    client.close()

    labels = '{job="rw-test",environment="test"}'
    # The final push on stop, then a staleness marker: the stopped series ends at once.
    assert prom.query_value(f"last_over_time(rw_pusher_level{labels}[1m])") == 43.0
    assert prom.query(f"rw_pusher_level{labels}") == []
    pushes = prom.query_value(f"count_over_time(rw_pusher_level{labels}[1m])")
    assert pushes >= 3
    sent = prom.query_value(
        'last_over_time(qw_remote_write_samples_total{outcome="sent",job="rw-test"}[1m])'
    )
    assert sent > 0
    requests = 'last_over_time(qw_remote_write_requests_total{code="204",job="rw-test"}[1m])'
    assert prom.query_value(requests) >= 2
    failed = registry.get_sample_value("qw_remote_write_samples_total", {"outcome": "failed"})
    assert failed == 0.0


def test_stopping_ends_every_series_with_a_staleness_marker(prom: PrometheusServer) -> None:
    registry = CollectorRegistry()
    Gauge("rw_stale_level", "level", ["side"], registry=registry).labels("bid").set(7.0)
    Histogram("rw_stale_seconds", "s", registry=registry).observe(0.2)
    client = RemoteWriteClient(prom.remote_write_url, timeout=5.0)
    pusher = MetricsPusher(client, registry, interval=0.1, external_labels=LABELS)
    with pusher:
        # While it runs, an instant query finds the series...
        deadline = time.monotonic() + 10.0
        while not prom.query('rw_stale_level{job="rw-test"}') and time.monotonic() < deadline:
            time.sleep(0.05)
        assert prom.query_value('rw_stale_level{side="bid",job="rw-test"}') == 7.0
    client.close()
    # ...and just after it stopped, none of them: each ended with a StaleNaN sample.
    for name in ("rw_stale_level", "rw_stale_seconds_count", "rw_stale_seconds_bucket"):
        assert prom.query(f'{name}{{job="rw-test"}}') == []
    assert prom.query_value('last_over_time(rw_stale_seconds_count{job="rw-test"}[1m])') == 1.0
