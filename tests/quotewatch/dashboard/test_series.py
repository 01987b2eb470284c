"""The health page's metric maths: PromQL-like increase, rate and histogram_quantile."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram
from quotewatch.dashboard.series import (
    MetricHistory,
    Scrape,
    Window,
    counter_increase,
    histogram_quantile,
    scrape,
)

INF = math.inf


def cumulative(observations: list[float], bounds: list[float]) -> list[tuple[float, float]]:
    """Prometheus-style cumulative buckets (`le` inclusive) with the +Inf bucket."""
    return [(b, float(sum(1 for o in observations if o <= b))) for b in [*bounds, INF]]


@settings(max_examples=300, deadline=None)
@given(
    observations=st.lists(
        st.floats(min_value=1e-6, max_value=100.0, allow_nan=False), min_size=1, max_size=60
    ),
    bounds=st.lists(
        st.floats(min_value=1e-3, max_value=50.0, allow_nan=False),
        min_size=1,
        max_size=12,
        unique=True,
    ).map(sorted),
    q=st.floats(min_value=0.001, max_value=1.0),
)
def test_quantile_lands_in_the_bucket_of_the_exact_quantile(
    observations: list[float], bounds: list[float], q: float
) -> None:
    # numpy's inverted_cdf is the exact sample quantile whose bucket Prometheus interpolates in.
    exact = float(np.quantile(observations, q, method="inverted_cdf"))
    estimate = histogram_quantile(q, cumulative(observations, bounds))
    assert estimate is not None
    if exact > bounds[-1]:
        assert estimate == bounds[-1]
        return
    upper = next(b for b in bounds if exact <= b)
    index = bounds.index(upper)
    lower = bounds[index - 1] if index > 0 else 0.0
    assert lower <= estimate <= upper


@given(
    counts=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=10),
    q1=st.floats(min_value=0.0, max_value=1.0),
    q2=st.floats(min_value=0.0, max_value=1.0),
)
def test_quantile_is_monotonic_in_q(counts: list[int], q1: float, q2: float) -> None:
    bounds = [0.001 * 2**i for i in range(len(counts))]
    running = np.cumsum(counts).tolist()
    buckets = [*zip(bounds, map(float, running), strict=True), (INF, float(running[-1]))]
    low, high = sorted((q1, q2))
    a, b = histogram_quantile(low, buckets), histogram_quantile(high, buckets)
    if running[-1] == 0:
        assert (a, b) == (None, None)
    else:
        assert a is not None
        assert b is not None
        assert a <= b


def test_quantile_interpolates_linearly_inside_a_bucket() -> None:
    buckets = [(1.0, 10.0), (2.0, 20.0), (INF, 20.0)]
    assert histogram_quantile(0.75, buckets) == pytest.approx(1.5)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.5)
    # q = 0 is the lower edge of the first bucket holding an observation.
    assert histogram_quantile(0.0, [(1.0, 0.0), (2.0, 1.0), (INF, 1.0)]) == 1.0
    # Above the last finite bound: Prometheus answers with that bound.
    assert histogram_quantile(0.99, [(1.0, 1.0), (INF, 100.0)]) == 1.0


def test_quantile_of_nothing_is_none_and_bad_q_is_an_error() -> None:
    assert histogram_quantile(0.5, [(1.0, 0.0), (INF, 0.0)]) is None
    assert histogram_quantile(0.5, [(1.0, 3.0)]) is None  # no +Inf bucket
    with pytest.raises(ValueError, match=r"between 0 and 1, got 1\.5"):
        histogram_quantile(1.5, [(1.0, 1.0), (INF, 1.0)])


def test_counter_increase_treats_a_drop_as_a_restart() -> None:
    assert counter_increase(5.0, 8.0) == 3.0
    assert counter_increase(5.0, 2.0) == 2.0
    assert counter_increase(None, 4.0) == 4.0


def test_window_rates_and_quantiles_from_a_real_registry() -> None:
    registry = CollectorRegistry()
    rows = Counter("rows", "rows", ["table"], registry=registry)
    latency = Histogram("lat_seconds", "lat", buckets=(0.1, 1.0), registry=registry)
    rows.labels("a").inc(10)
    latency.observe(5.0)  # before the window: must not count
    first = scrape(registry, now=100.0)
    rows.labels("a").inc(20)
    rows.labels("b").inc(4)  # a series born inside the window counts from 0
    for _ in range(9):
        latency.observe(0.05)
    latency.observe(0.5)
    window = Window(first, scrape(registry, now=110.0))
    assert window.increase("rows_total", by="table") == {"a": 20.0, "b": 4.0}
    assert window.rate("rows_total", by="table") == {"a": 2.0, "b": 0.4}
    assert window.rate("rows_total") == {"": 2.4}
    p50 = window.quantile(0.5, "lat_seconds")[""]
    assert p50 == pytest.approx(0.1 * 5 / 9)
    assert window.mean("lat_seconds")[""] == pytest.approx((9 * 0.05 + 0.5) / 10)
    assert first.total("rows_total", {"table": "a"}) == 10.0
    assert not any(name.endswith("_created") for name in first.names())


def test_history_keeps_the_newest_and_slides_windows() -> None:
    history = MetricHistory(capacity=5)
    for t in range(8):
        history.append(Scrape(float(t), {"c_total": {(): float(t * 2)}}))
    assert len(history) == 5
    assert [s.time for s in history.scrapes()] == [3.0, 4.0, 5.0, 6.0, 7.0]
    window = history.window(2.0)
    assert window is not None
    assert (window.first.time, window.last.time) == (5.0, 7.0)
    assert window.rate("c_total") == {"": 2.0}
    ends = [(w.first.time, w.last.time) for w in history.windows(2.0)]
    assert ends == [(3.0, 4.0), (3.0, 5.0), (4.0, 6.0), (5.0, 7.0)]
    with pytest.raises(ValueError, match="at least 2"):
        MetricHistory(capacity=1)
