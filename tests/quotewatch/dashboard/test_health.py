"""The health page: chart points and cards derived from a real registry's scrapes."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from quotewatch.dashboard.health import (
    CARDS,
    CHARTS,
    HealthPage,
    completeness,
    derive,
    outputs,
    render_health,
)
from quotewatch.dashboard.sampler import MetricsSampler
from quotewatch.metrics import LATENCY_BUCKETS


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class AppMetrics:
    """The app's metric names in a private registry, so the test controls every value."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.messages = Counter("coinbase_messages_received", "", ["type"], registry=r)
        self.gaps = Counter("coinbase_sequence_gaps", "", ["product", "source"], registry=r)
        self.missed = Counter("coinbase_messages_missed", "", ["product", "source"], registry=r)
        self.written = Counter("iceberg_rows_written", "", ["table"], registry=r)
        self.expected = Counter("pipeline_rows_expected", "", ["table"], registry=r)
        self.latency = Histogram(
            "pipeline_message_latency_seconds", "", buckets=LATENCY_BUCKETS, registry=r
        )
        self.stages = Histogram(
            "pipeline_callback_duration_seconds", "", ["stage"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.lag = Histogram(
            "pipeline_event_loop_lag_seconds", "", buckets=LATENCY_BUCKETS, registry=r
        )
        self.buffer_size = Gauge("labeler_buffer_size", "", registry=r)
        self.buffer_capacity = Gauge("labeler_buffer_capacity", "", registry=r)
        self.rw_success = Gauge("qw_remote_write_last_success_timestamp_seconds", "", registry=r)
        self.rw_queue = Gauge("qw_remote_write_queue_length", "", registry=r)


def run(metrics: AppMetrics, clock: Clock, seconds: int) -> MetricsSampler:
    """One scrape a second while the 'pipeline' does a steady amount of work."""
    sampler = MetricsSampler(metrics.registry, derive, window=10.0, clock=clock)
    sampler.sample()
    for _ in range(seconds):
        clock.now += 1.0
        metrics.messages.labels("l2update").inc(100)
        metrics.messages.labels("match").inc(5)
        metrics.expected.labels("raw_orderbook").inc(100)
        metrics.written.labels("raw_orderbook").inc(90)  # 90% complete
        metrics.expected.labels("raw_trades").inc(5)
        metrics.written.labels("raw_trades").inc(5)
        for _ in range(10):
            metrics.latency.observe(0.0003)  # in the (0.00025, 0.0005] bucket
            metrics.stages.labels("features").observe(0.0002)
            metrics.lag.observe(0.0008)
        sampler.sample()
    return sampler


def test_points_carry_rates_quantiles_and_means() -> None:
    metrics, clock = AppMetrics(), Clock(1_000.0)
    sampler = run(metrics, clock, seconds=15)
    last = sampler.points()[-1].values
    assert last["msg_rate/l2update"] == pytest.approx(100.0)
    assert last["msg_rate/match"] == pytest.approx(5.0)
    assert last["write_rate/raw_orderbook"] == pytest.approx(90.0)
    latency = last["latency/p99"]
    assert latency is not None
    assert 0.00025 <= latency <= 0.0005
    assert last["stages/features"] == pytest.approx(0.0002)
    assert len(sampler.points()) == 15  # the first scrape has no window behind it


def test_cards_show_completeness_gaps_lag_and_remote_write() -> None:
    metrics, clock = AppMetrics(), Clock(1_000.0)
    metrics.gaps.labels("BTC-USD", "trade_id").inc(2)
    metrics.missed.labels("BTC-USD", "trade_id").inc(7)
    metrics.gaps.labels("BTC-USD", "sequence_num").inc(1)
    metrics.buffer_size.set(250)
    metrics.buffer_capacity.set(1000)
    metrics.rw_success.set(1_000.0 + 3)
    metrics.rw_queue.set(12)
    sampler = run(metrics, clock, seconds=20)
    view = render_health(
        sampler.points(), sampler.history.window(60.0), clock.now + 2.0, rate_window=10.0
    )
    out = dict(zip((f"{c}.{p}" for c, p in outputs()), view.values, strict=True))
    assert out["health-msg-rate-value.children"] == "105.0/s"
    assert out["health-completeness-value.children"] == "90.0%"
    assert out["health-completeness-caption.children"].startswith("lowest: raw_orderbook")
    assert out["health-seq-gaps-value.children"] == "1"
    assert out["health-trade-gaps-value.children"] == "2"
    assert out["health-trade-gaps-caption.children"] == "7 ids missed since start"
    assert out["health-loop-lag-value.children"].endswith("µs")
    assert out["health-remote-write-value.children"] == "19 s ago"
    assert out["health-remote-write-caption.children"] == "last success · queue 12"

    completeness = out["health-completeness-chart.figure"]["data"][0]
    assert dict(zip(completeness["x"], completeness["y"], strict=True)) == {
        "raw_orderbook": pytest.approx(90.0),
        "raw_trades": pytest.approx(100.0),
    }
    buffers = out["health-buffers-chart.figure"]["data"][0]
    assert (buffers["y"], buffers["x"]) == (["labeler"], [25.0])
    rates = out["health-msg-rate-chart.figure"]["data"]
    assert {t["name"] for t in rates} == {"l2update", "match"}
    assert len(rates[0]["x"]) == 20
    # Chart values in seconds are drawn in milliseconds.
    latency = {t["name"]: t["y"][-1] for t in out["health-latency-chart.figure"]["data"]}
    assert 0.25 <= latency["p99"] <= 0.5


def test_without_a_pusher_remote_write_reads_off_and_empty_charts_say_so() -> None:
    registry = CollectorRegistry()
    clock = Clock(50.0)
    sampler = MetricsSampler(registry, derive, clock=clock)
    page = HealthPage(sampler, rate_window=10.0, clock=clock)
    first = page.view()
    assert first.values[-1].startswith("Collecting metrics")
    sampler.sample()
    clock.now += 1
    sampler.sample()
    view = page.view()
    out: dict[str, Any] = dict(zip((c for c, _ in outputs()), view.values, strict=False))
    assert out["health-remote-write-value"] == "off"
    assert page.view() is view  # no new scrape: the cached view is reused
    figures = view.values[2 * len(CARDS) + 2 :]
    assert len(figures) == len(CHARTS) + 1
    assert all(f["data"] == [] for f in figures[:-1])
    texts = {
        c.key: f["layout"]["annotations"][0]["text"]
        for c, f in zip(CHARTS, figures[:-1], strict=True)
    }
    assert texts.pop("remote_write") == "remote write is off (no push URL)"
    assert texts.pop("ml") == "no training batch yet: model warming up"
    assert set(texts.values()) == {"no data yet"}


def test_rows_pending_for_their_flush_are_not_missing() -> None:
    registry = CollectorRegistry()
    expected = Counter("pipeline_rows_expected", "", ["table"], registry=registry)
    written = Counter("iceberg_rows_written", "", ["table"], registry=registry)
    pending = Gauge("pipeline_rows_pending", "", ["table"], registry=registry)
    clock = Clock(1_000.0)
    sampler = MetricsSampler(registry, derive, clock=clock)
    held = {"raw_orderbook": 0, "features": 0}
    readings = []
    for second in range(1, 40):
        clock.now += 1.0
        for table in held:
            expected.labels(table).inc(30)
            held[table] += 30
        held["features"] -= 1  # one row a second is lost
        if second % 7 == 0:  # a flush commits everything held
            for table, rows in held.items():
                written.labels(table).inc(rows)
                held[table] = 0
        for table, rows in held.items():
            pending.labels(table).set(rows)
        sampler.sample()
        window = sampler.history.window(60.0)
        if window is not None:
            readings.append(completeness(window))
    assert len(readings) == 38
    assert all(r["raw_orderbook"] == 100.0 for r in readings), readings
    assert all(r["features"] == pytest.approx(100 * 29 / 30) for r in readings), readings


def test_a_ring_buffer_shows_its_fill_without_alarm_colours() -> None:
    metrics, clock = AppMetrics(), Clock(1_000.0)
    ring_size = Gauge("trade_buffer_size", "", registry=metrics.registry)
    ring_capacity = Gauge("trade_buffer_capacity", "", registry=metrics.registry)
    ring_size.set(1000)
    ring_capacity.set(1000)
    metrics.buffer_size.set(950)
    metrics.buffer_capacity.set(1000)
    sampler = run(metrics, clock, seconds=2)
    view = render_health(sampler.points(), sampler.history.window(60.0), clock.now, 10.0)
    out = dict(zip((f"{c}.{p}" for c, p in outputs()), view.values, strict=True))
    (bars,) = out["health-buffers-chart.figure"]["data"]
    colours = dict(zip(bars["y"], bars["marker"]["color"], strict=True))
    assert dict(zip(bars["y"], bars["x"], strict=True)) == {"labeler": 95.0, "trade (ring)": 100.0}
    assert colours["labeler"] != colours["trade (ring)"]
    assert colours["labeler"] == "#f06292"  # the warning colour: a queue about to overflow


def test_sampler_rejects_a_bad_interval() -> None:
    with pytest.raises(ValueError, match=r"> 0 s, got 0"):
        MetricsSampler(CollectorRegistry(), derive, interval=0)
