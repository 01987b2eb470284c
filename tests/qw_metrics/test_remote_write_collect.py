"""read_registry: the values read straight from lean and prometheus_client metrics encode to
exactly the series and values that `registry.collect()` would, push after push."""

from __future__ import annotations

import math
from typing import Any

import prometheus_client
import pytest
import qw_metrics
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Enum, Gauge, Info, Summary
from prometheus_client.metrics_core import Metric
from qw_metrics.remote_write import WriteRequestEncoder
from qw_metrics.remote_write.collect import Block, read_registry
from support.remote_write import TS, decode

pytestmark = pytest.mark.usefixtures("implementation")


def full_registry() -> tuple[CollectorRegistry, dict[str, object]]:
    registry = CollectorRegistry(target_info={"service": "qw"})
    metrics: dict[str, object] = {
        "lean_counter": qw_metrics.Counter("lean_frames", "f", ["type"], registry=registry),
        "lean_plain": qw_metrics.Counter("lean_plain_total", "p", registry=registry),
        "lean_hist": qw_metrics.Histogram(
            "lean_seconds", "s", ["stage"], buckets=(0.01, 0.1, 1), registry=registry
        ),
        "lean_negative": qw_metrics.Histogram(
            "lean_offset", "o", buckets=(-1, 0, 1), registry=registry
        ),
        "counter": prometheus_client.Counter("frames", "f", ["type"], registry=registry),
        "plain": prometheus_client.Counter("plain", "p", registry=registry),
        "gauge": Gauge("depth", "d", ["side"], registry=registry),
        "function_gauge": Gauge("clock", "c", ["src"], registry=registry),
        "hist": prometheus_client.Histogram(
            "flush_seconds", "f", ["table"], buckets=(0.5, 2), registry=registry
        ),
        "negative": prometheus_client.Histogram(
            "skew", "s", buckets=(-0.5, 0.5), registry=registry
        ),
        "summary": Summary("predict_seconds", "p", registry=registry),
        "info": Info("build", "b", registry=registry),
        "enum": Enum("state", "s", states=["up", "down"], registry=registry),
        "empty": prometheus_client.Counter("never", "n", ["x"], registry=registry),
    }
    metrics["info"].info({"version": "1"})  # type: ignore[attr-defined]
    metrics["function_gauge"].labels("wall").set_function(lambda: 42.5)  # type: ignore[attr-defined]
    return registry, metrics


def update(metrics: dict[str, object], values: list[float]) -> None:
    m: dict[str, Any] = metrics  # type: ignore[assignment]
    for i, value in enumerate(values):
        kind = f"k{i % 3}"
        m["lean_counter"].labels(kind).inc(abs(value))
        m["lean_plain"].inc()
        m["lean_hist"].labels(kind).observe(value)
        m["lean_negative"].observe(value)
        m["counter"].labels(kind).inc(abs(value))
        m["plain"].inc()
        m["gauge"].labels(kind).set(value)
        m["hist"].labels(kind).observe(value)
        m["negative"].observe(value)
        m["summary"].observe(value)


def both_ways(registry: CollectorRegistry) -> tuple[list[object], list[object]]:
    direct = WriteRequestEncoder({"job": "test"})
    collected = WriteRequestEncoder({"job": "test"})
    return (
        sorted(decode(direct.encode(read_registry(registry), TS))),  # type: ignore[type-var]
        sorted(decode(collected.encode(registry.collect(), TS))),  # type: ignore[type-var]
    )


@settings(max_examples=30, deadline=None)
@given(
    rounds=st.lists(
        st.lists(st.floats(-10, 10, allow_nan=False), max_size=8), min_size=1, max_size=4
    )
)
def test_direct_read_encodes_as_collect_push_after_push(rounds: list[list[float]]) -> None:
    registry, metrics = full_registry()
    direct = WriteRequestEncoder({"job": "test"})
    collected = WriteRequestEncoder({"job": "test"})
    for step, values in enumerate(rounds):
        update(metrics, values)
        stamp = TS + step * 15_000
        ours = decode(direct.encode(read_registry(registry), stamp))
        theirs = decode(collected.encode(registry.collect(), stamp))
        assert sorted(ours) == sorted(theirs)


def test_lean_and_prometheus_client_families_are_read_without_metric_objects() -> None:
    registry, metrics = full_registry()
    update(metrics, [0.05, 3.0, -2.0])
    families = read_registry(registry)
    blocks = {b.family: b for b in families if isinstance(b, Block)}
    readable = ("lean_counter", "lean_plain", "lean_hist", "lean_negative", "counter", "plain",
                "gauge", "function_gauge", "hist", "negative", "empty")  # fmt: skip
    budget = registry._names_to_collectors["qw_metrics_series_dropped_total"]
    assert set(blocks) == {metrics[name] for name in readable} | {budget}
    collected = {m.name for m in families if isinstance(m, Metric)}
    assert collected == {"target", "predict_seconds", "build", "state"}
    gauge = blocks[metrics["function_gauge"]]
    assert (gauge.keys, gauge.values) == ([("wall",)], [42.5])
    lean = blocks[metrics["lean_hist"]]
    # Per stage: cumulative buckets (0.01, 0.1, 1, +Inf), count, sum.
    assert lean.keys == [("k0",), ("k1",), ("k2",)]
    assert lean.values[:6] == [0.0, 1.0, 1.0, 1.0, 1.0, 0.05]
    assert blocks[metrics["empty"]].values == []


def test_new_children_and_a_new_label_set_order_are_followed() -> None:
    registry, metrics = full_registry()
    update(metrics, [1.0])
    direct = WriteRequestEncoder()
    first = decode(direct.encode(read_registry(registry), TS))
    update(metrics, [2.0, 3.0, 4.0])  # new children k1 and k2 appear
    ours, theirs = both_ways(registry)
    assert ours == theirs
    assert len(ours) > len(first)
    metrics["counter"].remove("k0")  # type: ignore[attr-defined]
    metrics["counter"].labels("k9").inc(7)  # type: ignore[attr-defined]
    ours, theirs = both_ways(registry)
    assert ours == theirs
    assert ((("__name__", "frames_total"), ("job", "test"), ("type", "k9")), 7.0, TS) in ours


def test_a_registry_subclass_is_collected_as_usual() -> None:
    class Custom(CollectorRegistry):
        pass

    registry = Custom()
    qw_metrics.Counter("c", "c", registry=registry).inc()
    assert not any(isinstance(f, Block) for f in read_registry(registry))
    plain = CollectorRegistry()
    qw_metrics.Counter("c", "c", registry=plain).inc()
    assert any(isinstance(f, Block) for f in read_registry(plain))
    assert math.isclose(plain.get_sample_value("c_total") or 0.0, 1.0)
