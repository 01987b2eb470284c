"""A registry read straight into the encoder's input.

`registry.collect()` builds a Metric and a Sample per series, which for thousands of series costs
more than encoding them. Here qw_metrics' lean metrics and prometheus_client's Counter, Gauge
and Histogram hand over their values as a `Block` instead: the label values of their children
(the encoder reuses its encoding of the series while they are unchanged) and one float per
series, in exposition order without `_created`. Every other collector, and any registry that
is not a plain CollectorRegistry, is collected as usual (qw_metrics refuses multiprocess mode).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from qw_metrics.lean import Counter, Histogram

Series = list[tuple[str, dict[str, str]]]
# How prometheus_client prints bounds (untyped there).
_go_float: Callable[[float], str] = floatToGoString


class Block(NamedTuple):
    """One metric family's values, read without building Metric objects."""

    family: object  # the metric: the encoder caches the series' encoding by it
    name: str
    kind: str
    help: str
    unit: str
    keys: list[tuple[str, ...]]  # children's label values; the same keys mean the same series
    series: Callable[[], Series]  # (sample name, labels) of each value, when keys changed
    values: list[float]


def read_registry(registry: CollectorRegistry) -> list[Metric | Block]:
    """Every metric family of `registry`, as Blocks where possible, else as collected."""
    if type(registry) is not CollectorRegistry:
        return list(registry.collect())
    with registry._lock:
        collectors = list(registry._collector_to_names)
        target_info: Metric | None = None
        if registry._target_info:
            target_info = registry._target_info_metric()  # type: ignore[no-untyped-call]
    out: list[Metric | Block] = [target_info] if target_info is not None else []
    for collector in collectors:
        if isinstance(collector, Counter | Histogram):
            values: list[float] = []
            keys = collector.read(values)
            series = _lean_series(collector, keys)
            out.append(
                Block(collector, collector.name, collector.kind, collector.documentation, "",
                      keys, series, values)
            )  # fmt: skip
        elif type(collector) in _PROM_KINDS:
            out.append(_read_prom(collector))
        else:
            out.extend(collector.collect())
    return out


def _lean_series(metric: Counter | Histogram, keys: list[tuple[str, ...]]) -> Callable[[], Series]:
    return lambda: metric.series(keys)


_PROM_KINDS: dict[type, str] = {
    prometheus_client.Counter: "counter",
    prometheus_client.Gauge: "gauge",
    prometheus_client.Histogram: "histogram",
}


def _read_prom(metric: Any) -> Block:
    """A prometheus_client Counter, Gauge or Histogram, read from its values as its own
    `_child_samples` would, in the order `_multi_samples` lists them."""
    kind = _PROM_KINDS[type(metric)]
    if metric._is_parent():
        with metric._lock:
            children = list(metric._metrics.items())
    else:
        children = [((), metric)]
    values: list[float] = []
    if kind == "histogram":
        with_sum = metric._upper_bounds[0] >= 0
        for _, child in children:
            values.extend(itertools.accumulate(b.get() for b in child._buckets))
            values.append(values[-1])
            if with_sum:
                values.append(child._sum.get())
    else:
        for _, child in children:
            # Gauge.set_function replaces the child's _child_samples with a call of the function.
            own = child.__dict__.get("_child_samples")
            values.append(child._value.get() if own is None else own()[0].value)
    keys = [key for key, _ in children]
    return Block(metric, metric._name, kind, metric._documentation, metric._unit, keys,
                 lambda: _prom_series(metric, kind, keys), values)  # fmt: skip


def _prom_series(metric: Any, kind: str, keys: list[tuple[str, ...]]) -> Series:
    name: str = metric._name
    out: Series = []
    for key in keys:
        labels = dict(zip(metric._labelnames, key, strict=True))
        if kind == "counter":
            out.append((name + "_total", labels))
        elif kind == "gauge":
            out.append((name, labels))
        else:
            bounds = metric._upper_bounds
            out.extend((name + "_bucket", {**labels, "le": _go_float(b)}) for b in bounds)
            out.append((name + "_count", labels))
            if bounds[0] >= 0:
                out.append((name + "_sum", labels))
    return out
