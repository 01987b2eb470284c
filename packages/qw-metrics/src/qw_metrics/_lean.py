"""What the lean Counter and Histogram share: label values, children under the registry's series
budget, and collection."""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from ._registries import resolve_registry
from .budget import series_budget

Child = TypeVar("Child")


class LeanMetric(Generic[Child]):
    """A collector of lean children keyed by label values; subclasses make the children and
    list their samples."""

    # The Prometheus type ("counter", "histogram") and the method a series without labels is
    # recorded through, for exposition and error messages.
    kind: ClassVar[str]
    record_method: ClassVar[str]

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        registry: CollectorRegistry | None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        target = resolve_registry(registry)
        self._budget = series_budget(target)
        self._children: dict[tuple[str, ...], Child] = {}
        self._unlabelled = None if labelnames else self._new_child()
        target.register(self)

    def _new_child(self) -> Child:
        raise NotImplementedError

    def _refused_child(self) -> Child:
        """A stand-in for a child the series budget refused."""
        raise NotImplementedError

    def _add_samples(self, metric: Metric, labels: dict[str, str], child: Child) -> None:
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
                    return self._refused_child()
                child = self._children[key] = self._new_child()
        return child

    def label_values(self, *values: object, **named: object) -> tuple[str, ...]:
        """Label values as the tuple of strings children are keyed by; ValueError if they do not
        match the label names."""
        if not self.labelnames:
            raise ValueError(
                f"{self.kind} {self.name!r} has no labels; call {self.record_method}() directly"
            )
        if values and named:
            raise ValueError("give label values either by position or by name, not both")
        if named:
            if set(named) != set(self.labelnames):
                raise ValueError(
                    f"{self.kind} {self.name!r} has labels {list(self.labelnames)}, "
                    f"got {sorted(named)}"
                )
            return tuple(str(named[n]) for n in self.labelnames)
        if len(values) != len(self.labelnames):
            raise ValueError(
                f"{self.kind} {self.name!r} has labels {list(self.labelnames)}, "
                f"got {len(values)} values"
            )
        return tuple(str(v) for v in values)

    def child(self) -> Child:
        """The single series of a metric without labels."""
        if self._unlabelled is None:
            raise ValueError(
                f"{self.kind} {self.name!r} has labels {list(self.labelnames)}: use .labels(...)"
            )
        return self._unlabelled

    def describe(self) -> list[Metric]:
        """The metric family without samples, so the registry can detect name clashes."""
        return [Metric(self.name, self.documentation, self.kind)]

    def collect(self) -> list[Metric]:
        """The metric family with every child's samples."""
        metric = Metric(self.name, self.documentation, self.kind)
        children: list[tuple[tuple[str, ...], Child]]
        if self._unlabelled is not None:
            children = [((), self._unlabelled)]
        else:
            with self._budget.lock:
                children = list(self._children.items())
        for values, child in children:
            self._add_samples(metric, dict(zip(self.labelnames, values, strict=True)), child)
        return [metric]

    def __repr__(self) -> str:
        return f"qw_metrics.{self.kind.capitalize()}({self.name!r}, labelnames={self.labelnames!r})"
