"""A lean histogram: the same exposition as prometheus_client's Histogram at a fraction of the
cost per observation.

Each thread observes into its own shard (a plain list), so an observation takes no lock and no
allocation; collection sums the shards. Most observations of a well-bucketed latency land in the
first bucket, so that one is checked with a single comparison before any binary search.
Exposition is sample-for-sample what prometheus_client produces for a Histogram with the same
name, labels, buckets and observations, `_created` included.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import cast

import prometheus_client.metrics
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from ._lean import LeanMetric
from ._names import validate_label_names, validate_metric_name
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
    """One series of a Histogram: observe values into it."""

    __slots__ = ("_bounds", "_created", "_first", "_local", "_lock", "_retired", "_shards")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._first = bounds[0]
        self._local = threading.local()
        self._lock = threading.Lock()
        # (thread, shard) per thread that observed; a shard is bucket counts then the sum.
        self._shards: list[tuple[weakref.ref[threading.Thread], list[float]]] = []
        # Shards of finished threads, folded together so threads that come and go cost nothing.
        self._retired: list[float] = [0] * len(bounds) + [0.0]
        self._created = time.time()

    def observe(self, amount: float) -> None:
        """Record one value."""
        try:
            shard: list[float] = self._local.shard
        except AttributeError:
            shard = self._new_shard()
        if amount <= self._first:
            shard[0] += 1
        else:
            shard[bisect_left(self._bounds, amount)] += 1
        shard[-1] += amount

    def hot_path(self) -> tuple[threading.local, tuple[float, ...], Callable[[], list[float]]]:
        """(thread-local holding `.shard`, bucket bounds, shard factory): what observe uses, for
        callers that inline it to save a call on their hot path."""
        return self._local, self._bounds, self._new_shard

    def _new_shard(self) -> list[float]:
        shard: list[float] = [0] * len(self._bounds) + [0.0]
        with self._lock:
            self._shards.append((weakref.ref(threading.current_thread()), shard))
        self._local.shard = shard
        return shard

    def snapshot(self) -> tuple[list[float], float]:
        """Per-bucket counts (not cumulative) and the sum of all values observed so far."""
        with self._lock:
            kept = []
            retired = self._retired
            for ref, shard in self._shards:
                thread = ref()
                if thread is None or not thread.is_alive():
                    # The thread has finished, so nothing writes this shard any more.
                    for i, value in enumerate(shard):
                        retired[i] += value
                else:
                    kept.append((ref, shard))
            self._shards = kept
            total = list(retired)
            for _, shard in kept:
                for i, value in enumerate(shard):
                    total[i] += value
        return total[:-1], total[-1]

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


# HistogramChild.observe(__VALUE__) as lines of a compiled wrapper (see _forwarding), for hot
# paths that save the call; `inline_observe_names` gives the names they use.
INLINE_OBSERVE = """
try:
    _qw_shard = _qw_local.shard
except AttributeError:
    _qw_shard = _qw_new_shard()
if __VALUE__ <= _qw_first:
    _qw_shard[0] += 1
else:
    _qw_shard[_qw_bisect(_qw_bounds, __VALUE__)] += 1
_qw_shard[-1] += __VALUE__
"""


def inline_observe_names(child: HistogramChild) -> dict[str, object]:
    """The globals INLINE_OBSERVE needs to observe into `child`."""
    local, bounds, new_shard = child.hot_path()
    return {
        "_qw_local": local, "_qw_bounds": bounds, "_qw_first": bounds[0],
        "_qw_new_shard": new_shard, "_qw_bisect": bisect_left,
    }  # fmt: skip


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
