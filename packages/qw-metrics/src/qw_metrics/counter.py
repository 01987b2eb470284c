"""A lean counter: the same exposition as prometheus_client's Counter at a fraction of the cost
per increment.

Each thread increments its own shard (a one-element list; see `_sharded.ThreadShards`), so `inc`
takes no lock and allocates nothing, and no increment is lost to a race; collection sums the
shards. Exposition is sample-for-sample what prometheus_client produces for a Counter with the
same name, labels and increments (`_total` and `_created`), without exemplars.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import prometheus_client.metrics
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from ._lean import LeanMetric
from ._names import validate_label_names, validate_metric_name
from ._sharded import ThreadShards
from .budget import SeriesBudget


class CounterChild(ThreadShards):
    """One series of a Counter: increment it."""

    __slots__ = ("_created",)

    def __init__(self) -> None:
        super().__init__([0.0])
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

    def get(self) -> float:
        """The total of every increment so far."""
        return self.totals()[0]

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
