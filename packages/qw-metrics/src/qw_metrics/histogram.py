"""A lean histogram: the same exposition as prometheus_client's Histogram at a fraction of the
cost per observation.

A series keeps its counts in C (`_speedups.Counts`) where the extension is built, else in
per-thread shards (`_sharded.ShardedCounts`); both count every value into the same bucket.
Exposition is sample-for-sample what prometheus_client produces for a Histogram with the same
name, labels, buckets and observations, `_created` included.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import cast

import prometheus_client.metrics
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from . import _native
from ._lean import LeanMetric
from ._names import validate_label_names, validate_metric_name
from ._sharded import ShardedCounts
from .budget import SeriesBudget

# prometheus_client's own formatting of bounds, so `le` values match it character for character.
_go_float = cast(Callable[[float], str], floatToGoString)

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, math.inf,
)  # fmt: skip


def prepare_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    """Bucket upper bounds as floats ending in +Inf; raise ValueError unless strictly increasing."""
    bounds = [float(b) for b in buckets]
    if any(math.isnan(b) for b in bounds):
        raise ValueError(f"bucket bounds must not be NaN: {list(buckets)!r}")
    if any(b >= c for b, c in itertools.pairwise(bounds)):
        raise ValueError(f"bucket bounds must be strictly increasing: {list(buckets)!r}")
    if not bounds or bounds[-1] != math.inf:
        bounds.append(math.inf)
    if len(bounds) < 2:
        raise ValueError("a histogram needs at least one finite bucket bound")
    return tuple(bounds)


class HistogramChild:
    """One series of a Histogram: observe values into it.

    Its bucket counts and sum live in `counts`, which decorators observe into directly.
    """

    __slots__ = ("_bounds", "_created", "counts")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts: _native.Counts | ShardedCounts = (
            _native.Counts(bounds) if _native.BUILT else ShardedCounts(bounds)
        )
        self._created = time.time()

    def observe(self, amount: float) -> None:
        """Record one value."""
        self.counts.observe(amount)

    def snapshot(self) -> tuple[list[float], float]:
        """Per-bucket counts (not cumulative) and the sum of all values observed so far."""
        return self.counts.snapshot()

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """(suffix, labels, value) exactly as prometheus_client's Histogram lists them."""
        counts, total = self.snapshot()
        samples: list[tuple[str, dict[str, str], float]] = []
        acc = 0.0
        for bound, count in zip(self._bounds, counts, strict=True):
            acc += count
            samples.append(("_bucket", {"le": _go_float(bound)}, acc))
        samples.append(("_count", {}, acc))
        if self._bounds[0] >= 0:
            samples.append(("_sum", {}, total))
        if prometheus_client.metrics._use_created:
            samples.append(("_created", {}, self._created))
        return samples


class _RefusedChild(HistogramChild):
    """Stands in for a child the series budget refused: observations count as dropped."""

    __slots__ = ("_budget",)

    def __init__(self, bounds: tuple[float, ...], budget: SeriesBudget) -> None:
        super().__init__(bounds)
        self._budget = budget

    def observe(self, amount: float) -> None:
        """Count the observation as dropped."""
        self._budget.drop()


class Histogram(LeanMetric[HistogramChild]):
    """A histogram metric with prometheus_client's exposition and a cheaper observe.

    `registry=None` means prometheus_client's default registry. Label children count against
    the registry's series budget.
    """

    kind = "histogram"
    record_method = "observe"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        registry: CollectorRegistry | None = None,
    ) -> None:
        name = validate_metric_name(name)
        names = validate_label_names(labelnames, reserved=("le",))
        self.bounds = prepare_buckets(buckets)
        super().__init__(name, documentation, names, registry)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def _refused_child(self) -> HistogramChild:
        return _RefusedChild(self.bounds, self._budget)

    def _add_samples(self, metric: Metric, labels: dict[str, str], child: HistogramChild) -> None:
        for suffix, extra, value in child.samples():
            metric.add_sample(self.name + suffix, {**labels, **extra}, value)

    def observe(self, amount: float) -> None:
        """Record one value (histograms without labels only)."""
        if self._unlabelled is None:
            raise ValueError(
                f"histogram {self.name!r} has labels {list(self.labelnames)}: "
                "use .labels(...).observe(value)"
            )
        self._unlabelled.observe(amount)
