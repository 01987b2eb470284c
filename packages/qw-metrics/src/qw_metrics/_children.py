"""Resolving the series a decorator records into, through the series budget.

A decorator's target is either fixed at decoration (static labels) or chosen per call (labels
from arguments or results). Either way the result is a plain `record(value)` callable: the
child's bound observe/inc/set, or the budget's drop counter when the budget refused the child.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from prometheus_client.metrics import MetricWrapperBase

from .budget import SeriesBudget
from .histogram import Histogram, HistogramChild

Record = Callable[[float], None]


class LabelError(ValueError):
    """Label names given to a decorator do not match the metric's label names."""


def free_label_names(metric: object) -> tuple[str, ...]:
    """Label names still to be given values for `metric` (none for a child or unlabelled one)."""
    if isinstance(metric, Histogram):
        return metric.labelnames
    if isinstance(metric, MetricWrapperBase) and not metric._labelvalues:
        return tuple(metric._labelnames)
    return ()


def metric_name(metric: object) -> str:
    """A readable name for error messages."""
    if isinstance(metric, Histogram):
        return metric.name
    if isinstance(metric, MetricWrapperBase):
        return str(metric._name)
    return type(metric).__name__


def check_static_labels(
    metric: object, static: Mapping[str, object], *, complete: bool
) -> tuple[str, ...]:
    """Validate static labels against the metric's label names and return those names.

    With `complete`, the static labels must name every label; otherwise they may name a subset
    and the rest come per call.
    """
    names = free_label_names(metric)
    extra = sorted(set(static) - set(names))
    missing = sorted(set(names) - set(static))
    if extra or (complete and missing):
        problems = []
        if extra:
            problems.append(f"unknown labels {extra}")
        if complete and missing:
            problems.append(f"missing values for {missing}")
        raise LabelError(
            f"metric {metric_name(metric)!r} has labels {list(names)}: {', '.join(problems)}"
        )
    return names


def bind(
    metric: object, method: str, values: tuple[str, ...], budget: SeriesBudget
) -> tuple[Record, bool]:
    """The bound `method` of the child for `values` and True; or, when the series budget refused
    the child, a stand-in that counts each observation as dropped and False."""
    if not values:
        target = metric.child() if isinstance(metric, Histogram) else metric
        record: Record = getattr(target, method)
        return record, True
    if isinstance(metric, Histogram):
        child: HistogramChild = metric.labels(*values)
        return child.observe, type(child) is HistogramChild
    assert isinstance(metric, MetricWrapperBase)
    with budget.lock:
        if values not in metric._metrics and not budget.try_acquire():
            return budget.drop, False
        prom_child = metric.labels(*values)
    child_record: Record = getattr(prom_child, method)
    return child_record, True


class PerCallChildren:
    """Children chosen per call from a label mapping, cached by label values."""

    def __init__(
        self,
        metric: object,
        method: str,
        names: tuple[str, ...],
        static: Mapping[str, object],
        budget: SeriesBudget,
    ) -> None:
        self._metric = metric
        self._method = method
        self._names = names
        self._static = {k: str(v) for k, v in static.items()}
        self._budget = budget
        self._cache: dict[tuple[str, ...], Record] = {}
        self._lock = threading.Lock()

    def get(self, labels: Mapping[str, object]) -> Record:
        """The record callable for these per-call labels merged over the static ones."""
        static = self._static
        try:
            key = tuple(str(labels[n]) if n in labels else static[n] for n in self._names)
        except KeyError as missing:
            raise LabelError(
                f"metric {metric_name(self._metric)!r} has labels {list(self._names)}: "
                f"no value for {missing}"
            ) from None
        record = self._cache.get(key)
        if record is None:
            unknown = set(labels) - set(self._names)
            if unknown:
                raise LabelError(
                    f"metric {metric_name(self._metric)!r} has labels {list(self._names)}, "
                    f"got unknown labels {sorted(unknown)}"
                )
            record, created = bind(self._metric, self._method, key, self._budget)
            if created:  # a refused one is asked for again: the budget may have been raised
                with self._lock:
                    self._cache[key] = record
        return record
