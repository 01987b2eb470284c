"""Resolving the series a decorator records into, through the series budget.

A decorator's target is either fixed at decoration (static labels) or chosen per call (labels
from arguments or results). Either way the result is a plain `record(value)` callable: the
child's bound observe/inc/set, or the budget's drop counter when the budget refused the child.
"""

from __future__ import annotations

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
    """Children chosen per call from label values, cached by those values: by the value alone
    for a metric with one label and no static label, so such a call builds nothing."""

    def __init__(
        self,
        metric: object,
        method: str,
        names: tuple[str, ...],
        static: Mapping[str, object],
        budget: SeriesBudget,
    ) -> None:
        self._metric, self._method, self._names, self._budget = metric, method, names, budget
        self._static = {k: str(v) for k, v in static.items()}
        self._single = names[0] if len(names) == 1 and not static else None
        self._cache: dict[object, Record] = {}

    def get(self, labels: CallLabels) -> Record:
        """The record callable for these per-call labels merged over the static ones."""
        key: object = None
        if self._single is not None:
            key = labels if type(labels) is str else None
            if type(labels) is dict and len(labels) == 1:
                key = labels.get(self._single)
                key = key if type(key) is str else None
        if key is None:
            key = self._key(labels)
        record = self._cache.get(key)
        if record is None:
            unknown = set() if isinstance(labels, str) else set(labels) - set(self._names)
            if unknown:
                raise LabelError(
                    f"metric {metric_name(self._metric)!r} has labels {list(self._names)}, "
                    f"got unknown labels {sorted(unknown)}"
                )
            values = key if type(key) is tuple else (key,)
            record, created = bind(self._metric, self._method, values, self._budget)
            if created:  # a refused one is asked for again: the budget may have been raised
                self._cache[key] = record
        return record

    def _key(self, labels: CallLabels) -> tuple[str, ...]:
        """The label values, in label-name order, as strings; LabelError if any is missing."""
        if isinstance(labels, str):
            if self._single is None:
                raise LabelError(
                    f"labels_from_result returned the string {labels!r}, but metric "
                    f"{metric_name(self._metric)!r} has labels {list(self._names)} "
                    f"(static: {sorted(self._static)}): a plain string is only for a metric with "
                    "exactly one label and no static label; return a mapping of labels instead"
                )
            return (str(labels),)
        try:
            return tuple(str(labels[n]) if n in labels else self._static[n] for n in self._names)
        except KeyError as missing:
            raise LabelError(
                f"metric {metric_name(self._metric)!r} has labels {list(self._names)}: "
                f"no value for {missing}"
            ) from None
