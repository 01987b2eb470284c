"""qw_metrics.Histogram: prometheus_client's exposition, exact counts, thread safety."""

from __future__ import annotations

import itertools
import math
import re
import threading
import time

import prometheus_client
import prometheus_client.metrics
import pytest
import qw_metrics
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from qw_metrics import Histogram, InvalidNameError
from qw_metrics._values import ShardedCounts

pytestmark = pytest.mark.usefixtures("implementation")

BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)
CREATED = re.compile(r"^(\S+_created(?:\{.*\})?) \S+$")


def exposition(registry: CollectorRegistry) -> list[str]:
    lines = generate_latest(registry).decode().splitlines()
    # The budget's own counter lives in qw_metrics registries only.
    return [line for line in lines if "qw_metrics_series_dropped" not in line]


def without_created_values(lines: list[str]) -> list[str]:
    return [CREATED.sub(r"\1 <created>", line) for line in lines]


def pair(labelnames: tuple[str, ...], buckets: tuple[float, ...] = BUCKETS):
    prom_registry, lean_registry = CollectorRegistry(), CollectorRegistry()
    prom = prometheus_client.Histogram(
        "latency_seconds", "Latency.", labelnames, buckets=buckets, registry=prom_registry
    )
    lean = Histogram("latency_seconds", "Latency.", labelnames, buckets=buckets,
                     registry=lean_registry)  # fmt: skip
    return prom, prom_registry, lean, lean_registry


VALUES = [0.0005, 0.001, 0.0011, 0.05, 0.5, 1.0, 3.0, 10.0, 11.0, 1e9]


def test_exposition_is_identical_to_prometheus_client_with_labels() -> None:
    prom, prom_registry, lean, lean_registry = pair(("stage", "product"))
    before = time.time()
    for i, value in enumerate(VALUES):
        labels = {"stage": f"s{i % 3}", "product": "BTC-USD"}
        prom.labels(**labels).observe(value)
        lean.labels(**labels).observe(value)
    prom_lines, lean_lines = exposition(prom_registry), exposition(lean_registry)
    assert len(prom_lines) == 31  # 3 children x (6 buckets, count, sum, created) + 4 headers
    assert without_created_values(lean_lines) == without_created_values(prom_lines)
    # _created values are creation times: each lean child's is within the test's run time.
    created = [float(line.split()[-1]) for line in lean_lines if "_created{" in line]
    assert len(created) == 3
    assert all(before <= value <= time.time() for value in created)


def test_exposition_is_identical_without_labels_and_with_negative_buckets() -> None:
    # A negative first bound makes prometheus_client leave out _sum; the lean one must too.
    prom, prom_registry, lean, lean_registry = pair((), (-1.0, 0.0, 1.0))
    for value in (-2.0, -0.5, 0.0, 0.5, 2.0):
        prom.observe(value)
        lean.observe(value)
    lean_lines = exposition(lean_registry)
    assert without_created_values(lean_lines) == without_created_values(exposition(prom_registry))
    assert not any("_sum" in line for line in lean_lines)


def test_created_lines_follow_prometheus_client_switch() -> None:
    prom, prom_registry, lean, lean_registry = pair(("stage",))
    prom.labels(stage="a").observe(1)
    lean.labels(stage="a").observe(1)
    prometheus_client.disable_created_metrics()
    try:
        lean_lines = exposition(lean_registry)
        assert lean_lines == exposition(prom_registry)
        assert not any("_created" in line for line in lean_lines)
    finally:
        prometheus_client.enable_created_metrics()
    assert any("_created" in line for line in exposition(lean_registry))


def reference(values: list[float], bounds: tuple[float, ...]) -> tuple[list[float], float]:
    counts = [0.0] * len(bounds)
    total = 0.0
    for value in values:
        total += value
        for i, bound in enumerate(bounds):
            if value <= bound:
                counts[i] += 1
                break
    return counts, total


@given(
    values=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), max_size=200),
    bounds=st.lists(
        st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=1, max_size=12,
        unique=True,
    ).map(sorted),
)  # fmt: skip
def test_buckets_sum_and_count_match_a_reference(values: list[float], bounds: list[float]) -> None:
    histogram = Histogram("h", "h", buckets=bounds, registry=CollectorRegistry())
    for value in values:
        histogram.observe(value)
    counts, total = histogram.child().snapshot()
    expected_counts, expected_total = reference(values, histogram.bounds)
    assert counts == expected_counts
    assert total == expected_total
    samples = {s.name: s.value for s in histogram.collect()[0].samples if not s.labels}
    assert samples["h_count"] == len(values)
    # And the exposition is prometheus_client's for the same observations.
    prom_registry = CollectorRegistry()
    prom = prometheus_client.Histogram("h", "h", buckets=bounds, registry=prom_registry)
    for value in values:
        prom.observe(value)
    lean_registry = CollectorRegistry()
    lean = Histogram("h", "h", buckets=bounds, registry=lean_registry)
    for value in values:
        lean.observe(value)
    assert without_created_values(exposition(lean_registry)) == without_created_values(
        exposition(prom_registry)
    )


def test_concurrent_observes_lose_nothing() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("h", "h", ("stage",), buckets=(0.25, 1.0), registry=registry)
    child = histogram.labels(stage="x")
    start = threading.Barrier(8)

    def work(value: float) -> None:
        start.wait()
        for _ in range(20_000):
            child.observe(value)

    threads = [threading.Thread(target=work, args=(0.5 if i % 2 else 2.0,)) for i in range(8)]
    for thread in threads:
        thread.start()
    # Collect while they run: reading must not disturb the writers.
    while any(t.is_alive() for t in threads):
        generate_latest(registry)
    for thread in threads:
        thread.join()
    get = registry.get_sample_value
    assert get("h_count", {"stage": "x"}) == 160_000
    assert get("h_bucket", {"stage": "x", "le": "0.25"}) == 0
    assert get("h_bucket", {"stage": "x", "le": "1.0"}) == 80_000
    assert get("h_sum", {"stage": "x"}) == 80_000 * 0.5 + 80_000 * 2.0


def test_finished_threads_are_folded_and_kept(implementation: str) -> None:
    histogram = Histogram("h", "h", registry=CollectorRegistry())
    for _ in range(3):
        thread = threading.Thread(target=histogram.observe, args=(1.0,))
        thread.start()
        thread.join()
    histogram.observe(2.0)
    counts, total = histogram.child().snapshot()
    assert sum(counts) == 4
    assert total == 5.0
    store = histogram.child().counts
    assert isinstance(store, ShardedCounts) == (implementation == "python")
    if isinstance(store, ShardedCounts):
        assert store.live_shards() == 1  # only this thread's shard stays live


@pytest.mark.parametrize(
    ("name", "labelnames"),
    [("bad-name", ()), ("1abc", ()), ("ok", ("le",)), ("ok", ("__x",)), ("ok", ("a", "a")),
     ("ok", ("bad label",)), ("ok", "stage")],
)  # fmt: skip
def test_invalid_names_fail_at_definition(name: str, labelnames: tuple[str, ...]) -> None:
    with pytest.raises(InvalidNameError, match="name"):
        Histogram(name, "doc", labelnames, registry=CollectorRegistry())


@pytest.mark.parametrize("buckets", [(1.0, 0.5), (1.0, 1.0), (math.nan,), (math.inf,)])
def test_invalid_buckets_fail_at_definition(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="bucket"):
        Histogram("h", "doc", buckets=buckets, registry=CollectorRegistry())


def test_label_values_must_match_names() -> None:
    histogram = Histogram("h", "doc", ("a", "b"), registry=CollectorRegistry())
    with pytest.raises(ValueError, match="has labels"):
        histogram.labels(a="1")
    with pytest.raises(ValueError, match="has labels"):
        histogram.observe(1.0)
    assert histogram.labels("1", "2") is histogram.labels(b="2", a="1")


def test_registers_in_the_default_registry_and_clashes_are_detected() -> None:
    histogram = qw_metrics.Histogram("qw_test_default_registry_seconds", "doc")
    try:
        histogram.observe(0.2)
        value = prometheus_client.REGISTRY.get_sample_value(
            "qw_test_default_registry_seconds_count"
        )
        assert value == 1
        with pytest.raises(ValueError, match="Duplicated"):
            qw_metrics.Histogram("qw_test_default_registry_seconds", "doc")
    finally:
        prometheus_client.REGISTRY.unregister(histogram)


@given(
    start=st.floats(1e-12, 1e3),
    factor=st.floats(1.01, 10),
    count=st.integers(1, 40),
)
def test_exponential_buckets_grow_by_the_factor(start: float, factor: float, count: int) -> None:
    bounds = qw_metrics.exponential_buckets(start, factor, count)
    assert len(bounds) == count + 1
    assert bounds[0] == start
    assert bounds[-1] == math.inf
    for low, high in itertools.pairwise(bounds[:-1]):
        assert math.isclose(high / low, factor, rel_tol=1e-9)


def test_exponential_buckets_refuse_bad_arguments() -> None:
    assert qw_metrics.exponential_buckets(250e-9, 2, 3) == (250e-9, 500e-9, 1e-6, math.inf)
    for args in ((0, 2, 3), (1, 1, 3), (1, 2, 0), (1, 2, 2.5)):
        with pytest.raises(ValueError, match="exponential_buckets"):
            qw_metrics.exponential_buckets(*args)  # type: ignore[arg-type]
