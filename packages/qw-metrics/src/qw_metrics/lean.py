"""Lean Counter and Histogram: prometheus_client's exposition at a fraction of the cost per
update.

Each series keeps its bucket counts and sum in a `_values` store (C where built, else pure
Python), so an update takes no lock and none is lost to a race; a counter is a store whose sum
is its value. Exposition is sample-for-sample what prometheus_client produces for the same name,
labels and updates (`_created` included, exemplars not). `read` hands the remote-write client
the same values without building Metric objects.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import ClassVar, Generic, ParamSpec, TypeVar, cast

import prometheus_client.metrics
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from ._names import validate_label_names, validate_metric_name
from ._values import COUNTER_BOUNDS, Counts, new_counts
from ._wrappers import Plan, Timed, decorate
from .budget import SeriesBudget, resolve_registry, series_budget

# prometheus_client's own formatting of bounds, so `le` values match it character for character.
_go_float = cast(Callable[[float], str], floatToGoString)
Samples = list[tuple[str, dict[str, str], float]]
P = ParamSpec("P")
R = TypeVar("R")
Child = TypeVar("Child", "CounterChild", "HistogramChild")

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


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """`count` bucket bounds from `start`, each `factor` times the last (then +Inf), e.g.
    `exponential_buckets(250e-9, 2, 20)` for 250 ns to about 0.13 s."""
    if not (start > 0 and factor > 1 and isinstance(count, int) and count >= 1):
        raise ValueError(
            f"exponential_buckets(start={start!r}, factor={factor!r}, count={count!r}): "
            "need start > 0, factor > 1 and an int count >= 1"
        )
    return prepare_buckets([start * factor**i for i in range(count)])


class Dropped:
    """The store of a child the series budget refused: every update counts as dropped."""

    __slots__ = ("_size", "observe")

    def __init__(self, budget: SeriesBudget, size: int) -> None:
        self.observe = budget.drop
        self._size = size

    def snapshot(self) -> tuple[list[float], float]:
        """Nothing is kept."""
        return [0] * self._size, 0.0


class _Child:
    __slots__ = ("_created", "counts")

    def __init__(self, counts: Counts | Dropped) -> None:
        self.counts = counts
        self._created = time.time()


class HistogramChild(_Child):
    """One series of a Histogram: observe values into it; decorators observe into `counts`."""

    __slots__ = ()

    def observe(self, amount: float) -> None:
        """Record one value."""
        self.counts.observe(amount)

    def snapshot(self) -> tuple[list[float], float]:
        """Per-bucket counts (not cumulative) and the sum of all values observed so far."""
        return self.counts.snapshot()

    def time(self) -> Timed:
        """Time a block or decorate a function into this series (prometheus_client's .time())."""

        def after(state: object, elapsed: float, exc: BaseException | None) -> None:
            self.counts.observe(elapsed)

        counts = None if isinstance(self.counts, Dropped) else self.counts
        return Timed(Plan("time", f"time:{id(self)}", True, after, counts=counts))


class CounterChild(_Child):
    """One series of a Counter: increment it."""

    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (>= 0; ValueError otherwise, as prometheus_client's Counter)."""
        if amount < 0:
            raise ValueError(f"counters only go up: cannot increment by {amount!r}")
        self.counts.observe(amount)

    def get(self) -> float:
        """The total of every increment so far."""
        return float(self.counts.snapshot()[1])

    def count_exceptions(
        self, exception: type[BaseException] | tuple[type[BaseException], ...] = Exception
    ) -> ExceptionCounter:
        """Count exceptions of type `exception` leaving a block or a decorated function (as
        prometheus_client's count_exceptions())."""
        return ExceptionCounter(self, exception)


class ExceptionCounter:
    """Increments a counter series when an exception of the given type leaves a `with` block
    or a call of the function it decorates; the exception propagates unchanged."""

    def __init__(
        self, child: CounterChild, exception: type[BaseException] | tuple[type[BaseException], ...]
    ) -> None:
        self._child, self._exception = child, exception

    def __enter__(self) -> ExceptionCounter:
        return self

    def __exit__(self, typ: object, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, self._exception):
            self._child.inc()

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate `func` (sync or async)."""

        def after(state: object, elapsed: float, exc: BaseException | None) -> None:
            self.__exit__(None, exc, None)

        plan = Plan("count_exceptions", f"count_exceptions:{id(self._child)}", True, after)
        wrapped: Callable[P, R] = decorate(plan, func)
        return wrapped


class _LeanMetric(Generic[Child]):
    """Children keyed by label values, under the registry's series budget, and their exposition."""

    kind: ClassVar[str]  # the Prometheus type
    record_method: ClassVar[str]  # how a series is updated, for error messages

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        bounds: tuple[float, ...],
        registry: CollectorRegistry | None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self._bounds = bounds
        target = resolve_registry(registry)
        self._budget = series_budget(target)
        self._children: dict[tuple[str, ...], Child] = {}
        self._unlabelled: Child | None = None if labelnames else self._child(new_counts(bounds))
        target.register(self)

    def _child(self, counts: Counts | Dropped) -> Child:
        raise NotImplementedError

    def _samples(self, child: Child) -> Samples:
        """(suffix, extra labels, value) of one child, in prometheus_client's order."""
        raise NotImplementedError

    def labels(self, *values: object, **named: object) -> Child:
        """The child for these label values (positional, or by name), created on first use."""
        key = self.label_values(*values, **named)
        child = self._children.get(key)
        if child is not None:
            return child
        with self._budget.lock:
            child = self._children.get(key)
            if child is None:
                if not self._budget.try_acquire():
                    return self._child(Dropped(self._budget, len(self._bounds)))
                child = self._children[key] = self._child(new_counts(self._bounds))
        return child

    def label_values(self, *values: object, **named: object) -> tuple[str, ...]:
        """Label values as the tuple of strings children are keyed by; ValueError if they do not
        match the label names."""
        if named and not values and set(named) == set(self.labelnames):
            return tuple(str(named[n]) for n in self.labelnames)
        if named or not self.labelnames or len(values) != len(self.labelnames):
            raise ValueError(
                f"{self.kind} {self.name!r} has labels {list(self.labelnames)}; got "
                f"{list(values) or sorted(named)}: give one value for each, by position or by "
                f"name (or, without labels, call {self.record_method}() directly)"
            )
        return tuple(str(v) for v in values)

    def child(self) -> Child:
        """The single series of a metric without labels."""
        if self._unlabelled is None:
            raise ValueError(
                f"{self.kind} {self.name!r} has labels {list(self.labelnames)}: use .labels(...)"
            )
        return self._unlabelled

    def remove(self, *values: object) -> None:
        """Drop the series with these label values (as prometheus_client's remove()). A
        decorator bound to it by static labels keeps recording into the dropped copy."""
        key = self.label_values(*values)
        with self._budget.lock:
            if self._children.pop(key, None) is not None:
                self._budget.release()

    def clear(self) -> None:
        """Drop every labelled series (as prometheus_client's clear())."""
        with self._budget.lock:
            for _ in range(len(self._children)):
                self._budget.release()
            self._children.clear()

    def children(self) -> list[tuple[tuple[str, ...], Child]]:
        """(label values, child) of every series, in creation order."""
        if self._unlabelled is not None:
            return [((), self._unlabelled)]
        with self._budget.lock:
            return list(self._children.items())

    def describe(self) -> list[Metric]:
        """The metric family without samples, so the registry can detect name clashes."""
        return [Metric(self.name, self.documentation, self.kind)]

    def collect(self) -> list[Metric]:
        """The metric family with every child's samples."""
        metric = Metric(self.name, self.documentation, self.kind)
        for values, child in self.children():
            labels = dict(zip(self.labelnames, values, strict=True))
            for suffix, extra, value in self._samples(child):
                metric.add_sample(self.name + suffix, {**labels, **extra}, value)
        return [metric]

    def read(self, into: list[float]) -> list[tuple[str, ...]]:
        """Append every series' remote-write values (no `_created`) to `into`, and return the
        children's label values in that order, for `series`."""
        children = self.children()
        for _, child in children:
            into.extend(s[2] for s in self._samples(child) if s[0] != "_created")
        return [values for values, _ in children]

    def series(self, keys: list[tuple[str, ...]]) -> list[tuple[str, dict[str, str]]]:
        """(sample name, labels) of each value `read` gives for children with label values
        `keys`."""
        out = []
        probe = self._child(Dropped(self._budget, len(self._bounds)))
        for values in keys:
            labels = dict(zip(self.labelnames, values, strict=True))
            for suffix, extra, _ in self._samples(probe):
                if suffix != "_created":
                    out.append((self.name + suffix, {**labels, **extra}))
        return out

    def __repr__(self) -> str:
        return f"qw_metrics.{self.kind.capitalize()}({self.name!r}, labelnames={self.labelnames!r})"


class Counter(_LeanMetric[CounterChild]):
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
        names = validate_label_names(labelnames)
        super().__init__(name, documentation, names, COUNTER_BOUNDS, registry)

    def _child(self, counts: Counts | Dropped) -> CounterChild:
        return CounterChild(counts)

    def _samples(self, child: CounterChild) -> Samples:
        samples: Samples = [("_total", {}, child.counts.snapshot()[1])]
        if prometheus_client.metrics._use_created:
            samples.append(("_created", {}, child._created))
        return samples

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (counters without labels only)."""
        self.child().inc(amount)

    def count_exceptions(
        self, exception: type[BaseException] | tuple[type[BaseException], ...] = Exception
    ) -> ExceptionCounter:
        """Count exceptions leaving a block or decorated function (counters without labels)."""
        return self.child().count_exceptions(exception)


class Histogram(_LeanMetric[HistogramChild]):
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
        self._le = [{"le": _go_float(bound)} for bound in self.bounds]
        super().__init__(name, documentation, names, self.bounds, registry)

    def _child(self, counts: Counts | Dropped) -> HistogramChild:
        return HistogramChild(counts)

    def _samples(self, child: HistogramChild) -> Samples:
        counts, total = child.counts.snapshot()
        cumulative = list(itertools.accumulate(map(float, counts)))
        samples: Samples = [("_bucket", le, n) for le, n in zip(self._le, cumulative, strict=True)]
        samples.append(("_count", {}, cumulative[-1]))
        if self.bounds[0] >= 0:  # prometheus_client leaves out `_sum` with negative buckets
            samples.append(("_sum", {}, total))
        if prometheus_client.metrics._use_created:
            samples.append(("_created", {}, child._created))
        return samples

    def observe(self, amount: float) -> None:
        """Record one value (histograms without labels only)."""
        if self._unlabelled is None:
            raise ValueError(
                f"histogram {self.name!r} has labels {list(self.labelnames)}: "
                "use .labels(...).observe(value)"
            )
        self._unlabelled.observe(amount)

    def time(self) -> Timed:
        """Time a block or decorate a function (histograms without labels only)."""
        return self.child().time()
