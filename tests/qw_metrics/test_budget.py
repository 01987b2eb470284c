"""The series budget: label children past max_series are refused, counted and warned about."""

from __future__ import annotations

import logging

import prometheus_client
import pytest
import qw_metrics
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter
from qw_metrics import counted, series_budget, set_series_budget, timed

DROPPED = "qw_metrics_series_dropped_total"


def children(registry: CollectorRegistry, sample: str) -> set[tuple[tuple[str, str], ...]]:
    found = set()
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == sample:
                found.add(tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")))
    return found


def test_past_the_budget_new_children_are_dropped_counted_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    set_series_budget(3, registry=registry)

    @timed(stage="s", labels_from_args=lambda product: {"stage": product}, registry=registry)
    def handle(product: str) -> str:
        return product

    with caplog.at_level(logging.WARNING, logger="qw_metrics"):
        for product in ["a", "b", "c", "d", "e", "a", "d"]:
            assert handle(product) == product  # nothing is raised into the function
    assert children(registry, "pipeline_callback_duration_seconds_count") == {
        (("stage", "a"),), (("stage", "b"),), (("stage", "c"),),
    }  # fmt: skip
    assert registry.get_sample_value(DROPPED) == 3  # d, e, d
    assert registry.get_sample_value("pipeline_callback_duration_seconds_count",
                                     {"stage": "a"}) == 2  # fmt: skip
    warnings = [r for r in caplog.records if "series budget" in r.getMessage()]
    assert len(warnings) == 1
    assert series_budget(registry).used == 3


def test_budget_covers_prometheus_metrics_and_static_labels() -> None:
    registry = CollectorRegistry()
    set_series_budget(1, registry=registry)
    messages = Counter("messages", "m", ["type"], registry=registry)
    count_match = counted(messages, type="match", registry=registry)(lambda: None)
    count_snapshot = counted(messages, type="snapshot", registry=registry)(lambda: None)
    count_match()
    count_snapshot()  # refused at decoration: every call is a dropped observation
    count_snapshot()
    assert registry.get_sample_value("messages_total", {"type": "match"}) == 1
    assert registry.get_sample_value("messages_total", {"type": "snapshot"}) is None
    assert registry.get_sample_value(DROPPED) == 2
    # A child that exists already costs nothing.
    counted(messages, type="match", registry=registry)(lambda: None)()
    assert registry.get_sample_value("messages_total", {"type": "match"}) == 2


def test_budget_covers_lean_histogram_labels_and_can_be_raised() -> None:
    registry = CollectorRegistry()
    set_series_budget(0, registry=registry)
    histogram = qw_metrics.Histogram("h", "h", ["k"], registry=registry)
    histogram.labels(k="x").observe(1.0)
    assert registry.get_sample_value("h_count", {"k": "x"}) is None
    assert registry.get_sample_value(DROPPED) == 1
    set_series_budget(1, registry=registry)
    histogram.labels(k="x").observe(1.0)
    assert registry.get_sample_value("h_count", {"k": "x"}) == 1


def test_default_budget_and_bad_values() -> None:
    assert series_budget(CollectorRegistry()).max_series == 10_000
    assert series_budget().max_series >= 0  # the default registry has one too
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="max_series"):
            set_series_budget(bad, registry=CollectorRegistry())  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    budget=st.integers(min_value=0, max_value=8),
    calls=st.lists(st.tuples(st.sampled_from("abcdefghij"), st.sampled_from("xyz")), max_size=60),
)
def test_budget_is_never_exceeded(budget: int, calls: list[tuple[str, str]]) -> None:
    registry = CollectorRegistry()
    set_series_budget(budget, registry=registry)
    rows = Counter("rows", "r", ["table", "kind"], registry=registry)
    flush = qw_metrics.Histogram("flush_seconds", "f", ["table"], registry=registry)

    @counted(rows, labels_from_result=lambda r: {"table": r[0], "kind": r[1]}, registry=registry)
    @timed(flush, labels_from_args=lambda table, kind: {"table": table}, registry=registry)
    def write(table: str, kind: str) -> tuple[str, str]:
        return table, kind

    created: set[tuple[str, ...]] = set()
    dropped = 0
    for table, kind in calls:
        # Reference: the timed child is asked for first, then the counted one.
        for key in (("h", table), ("c", table, kind)):
            if key in created:
                continue
            if len(created) < budget:
                created.add(key)
            else:
                dropped += 1
        assert write(table, kind) == (table, kind)
    series = children(registry, "rows_total") | children(registry, "flush_seconds_count")
    assert len(series) == len(created) <= budget
    assert (registry.get_sample_value(DROPPED) or 0) == dropped
    assert series_budget(registry).used == len(created)


def test_default_registry_budget_counter_exists() -> None:
    series_budget()
    assert prometheus_client.REGISTRY.get_sample_value(DROPPED) is not None
