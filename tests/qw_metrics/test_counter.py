"""qw_metrics.Counter: prometheus_client's exposition, exact totals, thread safety; and
`counted` into it with labels from the result (mapping or plain string)."""

from __future__ import annotations

import logging
import re
import threading
from enum import StrEnum

import prometheus_client
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from qw_metrics import Counter, InvalidNameError, counted, recorded, set_series_budget
from qw_metrics._values import ShardedCounts


class Kind(StrEnum):
    MATCH = "match"
    L2UPDATE = "l2update"


CREATED = re.compile(r"^(\S+_created(?:\{.*\})?) \S+$")
DROPPED = "qw_metrics_series_dropped_total"


def exposition(registry: CollectorRegistry) -> list[str]:
    lines = generate_latest(registry).decode().splitlines()
    # The budget's own counter lives in qw_metrics registries only.
    return [line for line in lines if "qw_metrics_series_dropped" not in line]


def without_created_values(lines: list[str]) -> list[str]:
    return [CREATED.sub(r"\1 <created>", line) for line in lines]


def pair(
    name: str, labelnames: tuple[str, ...]
) -> tuple[prometheus_client.Counter, CollectorRegistry, Counter, CollectorRegistry]:
    prom_registry, lean_registry = CollectorRegistry(), CollectorRegistry()
    prom = prometheus_client.Counter(name, "Frames.", labelnames, registry=prom_registry)
    lean = Counter(name, "Frames.", labelnames, registry=lean_registry)
    return prom, prom_registry, lean, lean_registry


@given(
    increments=st.lists(
        st.tuples(
            st.sampled_from(["l2update", "match", "tick ✓", 'q"uote\\']),
            st.one_of(st.just(1), st.floats(min_value=0, max_value=1e9, allow_nan=False)),
        ),
        max_size=50,
    ),
    name=st.sampled_from(["frames", "frames_total"]),
)
def test_exposition_is_identical_to_prometheus_client(
    increments: list[tuple[str, float]], name: str
) -> None:
    prom, prom_registry, lean, lean_registry = pair(name, ("type",))
    for kind, amount in increments:
        prom.labels(type=kind).inc(amount)
        lean.labels(type=kind).inc(amount)
    assert without_created_values(exposition(lean_registry)) == without_created_values(
        exposition(prom_registry)
    )
    assert lean.name == "frames"


def test_exposition_without_labels_and_created_switch() -> None:
    prom, prom_registry, lean, lean_registry = pair("ticks", ())
    before = exposition(lean_registry)
    assert without_created_values(before) == without_created_values(exposition(prom_registry))
    assert "ticks_total 0.0" in before
    for amount in (1, 2.5, 0):
        prom.inc(amount)
        lean.inc(amount)
    prometheus_client.disable_created_metrics()
    try:
        lean_lines = exposition(lean_registry)
        assert lean_lines == exposition(prom_registry)
        assert not any("_created" in line for line in lean_lines)
    finally:
        prometheus_client.enable_created_metrics()
    assert "ticks_total 3.5" in exposition(lean_registry)
    assert any("ticks_created" in line for line in exposition(lean_registry))


def test_concurrent_increments_lose_nothing() -> None:
    registry = CollectorRegistry()
    child = Counter("c", "c", ("type",), registry=registry).labels(type="x")
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(20_000):
            child.inc()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    seen = []
    # Collect while they run: reading must not disturb the writers, and totals only go up.
    while any(t.is_alive() for t in threads):
        seen.append(registry.get_sample_value("c_total", {"type": "x"}) or 0.0)
    for thread in threads:
        thread.join()
    assert registry.get_sample_value("c_total", {"type": "x"}) == 160_000
    assert seen == sorted(seen)


@pytest.mark.usefixtures("implementation")
def test_finished_threads_are_folded_and_kept() -> None:
    counter = Counter("c", "c", registry=CollectorRegistry())
    for amount in (1, 2, 3):
        thread = threading.Thread(target=counter.inc, args=(amount,))
        thread.start()
        thread.join()
    counter.inc(4)
    assert counter.child().get() == 10
    store = counter.child().counts
    if isinstance(store, ShardedCounts):
        assert store.live_shards() == 1  # only this thread's shard stays live
    assert counter.child().get() == 10


def test_bad_use_fails_clearly() -> None:
    counter = Counter("c", "c", ("a", "b"), registry=CollectorRegistry())
    with pytest.raises(ValueError, match="has labels"):
        counter.labels(a="1")
    with pytest.raises(ValueError, match="has labels"):
        counter.inc()
    assert counter.labels("1", "2") is counter.labels(b="2", a="1")
    with pytest.raises(ValueError, match="only go up"):
        counter.labels("1", "2").inc(-1)
    with pytest.raises(InvalidNameError):
        Counter("bad-name", "c", registry=CollectorRegistry())
    registry = CollectorRegistry()
    Counter("dup", "d", registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        prometheus_client.Counter("dup", "d", registry=registry)


def test_budget_covers_lean_counter_labels() -> None:
    registry = CollectorRegistry()
    set_series_budget(1, registry=registry)
    counter = Counter("c", "c", ["k"], registry=registry)
    counter.labels(k="x").inc()
    counter.labels(k="y").inc()  # refused: dropped and counted
    assert registry.get_sample_value("c_total", {"k": "x"}) == 1
    assert registry.get_sample_value("c_total", {"k": "y"}) is None
    assert registry.get_sample_value(DROPPED) == 1


def test_counted_into_a_lean_counter_with_mapping_or_string_labels() -> None:
    registry = CollectorRegistry()
    frames = Counter("frames", "f", ["type"], registry=registry)

    @counted(frames, labels_from_result=lambda kind: {"type": kind}, registry=registry)
    def by_mapping(kind: str) -> str:
        return kind

    @counted(frames, labels_from_result=lambda kind: kind or None, registry=registry)
    def by_string(kind: str) -> str:
        return kind

    @counted(frames, labels_from_result=Kind, registry=registry)
    def by_enum(kind: str) -> str:
        return kind

    @counted(frames, type="tick", amount=len, registry=registry)
    def fixed(items: list[int]) -> list[int]:
        return items

    for kind in ["match", "l2update", "match"]:
        assert by_mapping(kind) == kind
        assert by_string(kind) == kind
        assert by_enum(kind) == kind
    by_string("")  # None: not counted
    fixed([1, 2, 3])
    get = registry.get_sample_value
    assert get("frames_total", {"type": "match"}) == 6
    assert get("frames_total", {"type": "l2update"}) == 3
    assert get("frames_total", {"type": "tick"}) == 3
    assert get("frames_total", {"type": ""}) is None


def test_string_labels_are_only_for_a_single_label(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    # A name of its own: failures are logged once per decorated metric name.
    rows = Counter("string_labelled_rows", "r", ["table", "kind"], registry=registry)
    gaps = prometheus_client.Gauge("gap", "g", ["product"], registry=registry)

    @counted(rows, labels_from_result=lambda r: r, registry=registry)
    def wrong(table: str) -> str:
        return table

    @recorded(gaps, value=len, labels_from_result=lambda r: r, registry=registry)
    def right(product: str) -> str:
        return product

    with caplog.at_level(logging.WARNING, logger="qw_metrics"):
        assert wrong("trades") == "trades"  # nothing is raised into the function
    errors = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert any("exactly one label" in error for error in errors)
    assert registry.get_sample_value("string_labelled_rows_total", {"table": "trades"}) is None
    right("BTC-USD")
    assert registry.get_sample_value("gap", {"product": "BTC-USD"}) == 7


def test_per_call_labels_from_non_strings_and_unknown_names() -> None:
    registry = CollectorRegistry()
    ids = Counter("ids", "i", ["n"], registry=registry)

    @counted(ids, labels_from_result=lambda r: r, registry=registry)
    def labels(result: object) -> object:
        return result

    labels({"n": 1})
    labels({"n": True})
    labels({"n": 1.0})  # equal to 1 and True as a key, but a different label value
    labels({"n": 1})
    labels({"m": 1})  # no value for n: not counted (and logged)
    labels({"n": 2, "extra": 3})  # an unknown label name: not counted
    get = registry.get_sample_value
    assert get("ids_total", {"n": "1"}) == 2
    assert get("ids_total", {"n": "True"}) == 1
    assert get("ids_total", {"n": "1.0"}) == 1
    assert get("ids_total", {"n": "2"}) is None
