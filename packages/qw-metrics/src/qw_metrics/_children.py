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
from .errors import LabelError
from .lean import Counter, CounterChild, Dropped, Histogram, HistogramChild

Record = Callable[[float], None]
# Per-call label values: a mapping of label names to values, or, for a metric with exactly one
# label name, that label's value as a plain string (no dict built per call).
CallLabels = Mapping[str, object] | str


def free_label_names(metric: object) -> tuple[str, ...]:
    """Label names still to be given values for `metric` (none for a child or unlabelled one)."""
    if isinstance(metric, Histogram | Counter):
        return metric.labelnames
    if isinstance(metric, MetricWrapperBase) and not metric._labelvalues:
        return tuple(metric._labelnames)
    return ()


def metric_name(metric: object) -> str:
    """A readable name for error messages."""
    if isinstance(metric, Histogram | Counter):
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
        target = metric.child() if isinstance(metric, Histogram | Counter) else metric
        record: Record = getattr(target, method)
        return record, True
    if isinstance(metric, Histogram):
        child: HistogramChild = metric.labels(*values)
        return child.observe, not isinstance(child.counts, Dropped)
    if isinstance(metric, Counter):
        counter_child: CounterChild = metric.labels(*values)
        return counter_child.inc, not isinstance(counter_child.counts, Dropped)
    assert isinstance(metric, MetricWrapperBase)
    with budget.lock:
        if values not in metric._metrics and not budget.try_acquire():
            return budget.drop, False
        prom_child = metric.labels(*values)
    child_record: Record = getattr(prom_child, method)
    return child_record, True


class PerCallChildren:
    """Children chosen per call from label values, cached by those values.

    When the metric has exactly one label name and no static value for it, the cache is keyed
    by that label's value alone, so a call with a cached value builds nothing.
    """

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
        self._single: dict[str, Record] = {}
        self._lock = threading.Lock()
        self.get: Callable[[CallLabels], Record] = (
            self._get_single if len(names) == 1 and not static else self._get_many
        )

    def _get_single(self, labels: CallLabels) -> Record:
        """The record callable for the one label's value (a string, or in a mapping)."""
        if type(labels) is str:
            value = labels
        elif isinstance(labels, str):  # a str subclass such as a StrEnum member
            value = str(labels)
        else:
            try:
                found = labels[self._names[0]]
            except KeyError:
                return self._resolve(labels)[0]  # raises the LabelError naming what is missing
            value = found if type(found) is str else str(found)
        record = self._single.get(value)
        if record is None:
            record, created = self._resolve(labels)
            if created:  # a refused one is asked for again: the budget may have been raised
                self._single[value] = record
        return record

    def _get_many(self, labels: CallLabels) -> Record:
        """The record callable for these per-call labels merged over the static ones."""
        key = self._key(labels)
        record = self._cache.get(key)
        if record is None:
            record, created = self._bind(key, labels)
            if created:
                with self._lock:
                    self._cache[key] = record
        return record

    def _resolve(self, labels: CallLabels) -> tuple[Record, bool]:
        return self._bind(self._key(labels), labels)

    def _key(self, labels: CallLabels) -> tuple[str, ...]:
        """The label values, in label-name order, as strings; LabelError if any is missing."""
        if isinstance(labels, str):
            if len(self._names) != 1 or self._static:
                raise LabelError(
                    f"labels_from_result returned the string {labels!r}, but metric "
                    f"{metric_name(self._metric)!r} has labels {list(self._names)} "
                    f"(static: {sorted(self._static)}): a plain string is only for a metric with "
                    "exactly one label and no static label; return a mapping of labels instead"
                )
            return (str(labels),)
        static = self._static
        try:
            return tuple(str(labels[n]) if n in labels else static[n] for n in self._names)
        except KeyError as missing:
            raise LabelError(
                f"metric {metric_name(self._metric)!r} has labels {list(self._names)}: "
                f"no value for {missing}"
            ) from None

    def _bind(self, key: tuple[str, ...], labels: CallLabels) -> tuple[Record, bool]:
        """Bind the child for `key` (new label values), after checking for unknown labels."""
        unknown = set() if isinstance(labels, str) else set(labels) - set(self._names)
        if unknown:
            raise LabelError(
                f"metric {metric_name(self._metric)!r} has labels {list(self._names)}, "
                f"got unknown labels {sorted(unknown)}"
            )
        return bind(self._metric, self._method, key, self._budget)
