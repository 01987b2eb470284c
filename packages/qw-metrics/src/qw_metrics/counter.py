"""A lean counter: the same exposition as prometheus_client's Counter at a fraction of the cost
per increment.

Like the lean Histogram, each thread increments its own shard (a one-element list), so `inc`
takes no lock and allocates nothing, and no increment is lost to a race; collection sums the
shards. Exposition is sample-for-sample what prometheus_client produces for a Counter with the
same name, labels and increments (`_total` and `_created`), without exemplars.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable

import prometheus_client.metrics
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from ._lean import LeanMetric
from ._names import validate_label_names, validate_metric_name
from .budget import SeriesBudget


class CounterChild:
    """One series of a Counter: increment it."""

    __slots__ = ("_created", "_local", "_lock", "_retired", "_shards")

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        # (thread, shard) per thread that incremented; shards of finished threads are folded
        # into _retired so threads that come and go cost nothing.
        self._shards: list[tuple[weakref.ref[threading.Thread], list[float]]] = []
        self._retired = 0.0
        self._created = time.time()

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (>= 0; ValueError otherwise, as prometheus_client's Counter)."""
        if amount < 0:
            raise ValueError(f"counters only go up: cannot increment by {amount!r}")
        try:
            shard: list[float] = self._local.shard
        except AttributeError:
            shard = self._new_shard()
        shard[0] += amount

    def _new_shard(self) -> list[float]:
        shard = [0.0]
        with self._lock:
            self._shards.append((weakref.ref(threading.current_thread()), shard))
        self._local.shard = shard
        return shard

    def get(self) -> float:
        """The total of every increment so far."""
        with self._lock:
            kept = []
            for ref, shard in self._shards:
                thread = ref()
                if thread is None or not thread.is_alive():
                    # The thread has finished, so nothing writes this shard any more.
                    self._retired += shard[0]
                else:
                    kept.append((ref, shard))
            self._shards = kept
            return self._retired + sum(shard[0] for _, shard in kept)

    def samples(self) -> list[tuple[str, float]]:
        """(suffix, value) exactly as prometheus_client's Counter lists them."""
        samples = [("_total", self.get())]
        if prometheus_client.metrics._use_created:
            samples.append(("_created", self._created))
        return samples


class _RefusedChild(CounterChild):
    """Stands in for a child the series budget refused: increments count as dropped."""

    __slots__ = ("_budget",)

    def __init__(self, budget: SeriesBudget) -> None:
        super().__init__()
        self._budget = budget

    def inc(self, amount: float = 1) -> None:
        """Count the increment as dropped."""
        self._budget.drop()


class Counter(LeanMetric[CounterChild]):
    """A counter metric with prometheus_client's exposition and a cheaper, lock-free `inc`.

    A trailing `_total` in `name` is dropped, as prometheus_client does; samples are named
    `<name>_total`. `registry=None` means prometheus_client's default registry. Label children
    count against the registry's series budget.
    """

    kind = "counter"
    record_method = "inc"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        name = validate_metric_name(name).removesuffix("_total")
        super().__init__(name, documentation, validate_label_names(labelnames), registry)

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def _refused_child(self) -> CounterChild:
        return _RefusedChild(self._budget)

    def _add_samples(self, metric: Metric, labels: dict[str, str], child: CounterChild) -> None:
        for suffix, value in child.samples():
            metric.add_sample(self.name + suffix, dict(labels), value)

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (counters without labels only)."""
        self.child().inc(amount)
