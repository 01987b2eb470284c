"""The metric names quotewatch exports, as Prometheus sees them (suffixes included).

Built from prometheus_client's registry after importing `quotewatch.metrics` and `qw_metrics`,
plus the families qw_metrics creates on first use: the stage histogram, the remote-write
client's metrics and the `track_buffer` gauges for each buffer name quotewatch tracks.
"""

from __future__ import annotations

import collections
import functools
import re
from pathlib import Path

import prometheus_client
import quotewatch
import quotewatch.metrics
import qw_metrics
from prometheus_client import REGISTRY, CollectorRegistry
from qw_metrics.remote_write.metrics import RemoteWriteMetrics

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
TRACKED = re.compile(r"@track_buffer\(\s*(\w+)")


def tracked_buffer_names() -> set[str]:
    """The buffer names quotewatch's source passes to `track_buffer(...)` (its constants in
    quotewatch.metrics)."""
    source = Path(quotewatch.__file__).parent
    constants = {
        name for path in source.rglob("*.py") for name in TRACKED.findall(path.read_text("utf-8"))
    }
    names = {getattr(quotewatch.metrics, constant) for constant in constants}
    assert names == set(quotewatch.metrics.BUFFERS), constants
    return names


def _sample_names(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


@functools.cache
def exported_metric_names() -> set[str]:
    """Every sample name quotewatch's process can export."""
    lazy = CollectorRegistry()
    qw_metrics.stage_histogram(lazy)
    RemoteWriteMetrics.for_registry(lazy)
    buffers = [collections.deque() for _ in tracked_buffer_names()]
    for name, buffer in zip(sorted(tracked_buffer_names()), buffers, strict=True):
        qw_metrics.track_buffer(name, capacity=1, registry=lazy)(buffer)
    return _sample_names(REGISTRY) | _sample_names(lazy)


def metrics_with_label(label: str) -> set[str]:
    """Sample names of quotewatch's metrics that carry `label`."""
    names = set()
    for value in vars(quotewatch.metrics).values():
        wrapper = isinstance(value, prometheus_client.metrics.MetricWrapperBase)
        if wrapper and label in value._labelnames:
            names |= _sample_names_of(value)
    if label == "product":  # the model's score gauges, read at collect time, are per product
        names |= {name for name, *_ in quotewatch.metrics.ModelScoresCollector.GAUGES}
    return names


def _sample_names_of(metric: prometheus_client.metrics.MetricWrapperBase) -> set[str]:
    registry = CollectorRegistry()
    registry.register(metric)
    return _sample_names(registry)
