"""The series budget: a cap on label children created through qw_metrics, per registry.

Grafana Cloud's free tier stores 10,000 active series. A label taken from data (a product id, a
table name) can multiply series without bound, so qw_metrics refuses new children past the
budget instead: the observation is dropped, counted in `qw_metrics_series_dropped_total` and
warned about once. Nothing is raised into instrumented code.
"""

from __future__ import annotations

import logging
import threading
import weakref

from prometheus_client import REGISTRY, CollectorRegistry, Counter

DEFAULT_MAX_SERIES = 10_000

logger = logging.getLogger("qw_metrics")


def resolve_registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    """The registry to use: `registry`, or prometheus_client's default one when None."""
    if registry is None:
        return REGISTRY
    if not isinstance(registry, CollectorRegistry):
        raise TypeError(
            f"registry must be a prometheus_client.CollectorRegistry or None, "
            f"not {type(registry).__name__}"
        )
    return registry


class SeriesBudget:
    """Counts label children created through qw_metrics in one registry and refuses new ones
    past `max_series`."""

    def __init__(self, registry: CollectorRegistry, max_series: int = DEFAULT_MAX_SERIES) -> None:
        # Held while checking for an existing child and creating it, so both are one step.
        self.lock = threading.Lock()
        self._max = _checked_max(max_series)
        self._used = 0
        self._warned = False
        self._dropped = Counter(
            "qw_metrics_series_dropped",
            "Observations dropped because their label set would have exceeded the qw_metrics "
            "series budget.",
            registry=registry,
        )

    @property
    def max_series(self) -> int:
        """The cap on label children."""
        return self._max

    @property
    def used(self) -> int:
        """Label children created through qw_metrics so far."""
        return self._used

    def set_max(self, max_series: int) -> None:
        """Change the cap; children that already exist are kept."""
        self._max = _checked_max(max_series)

    def try_acquire(self) -> bool:
        """Take one series from the budget; False when it is used up.

        The caller must hold `lock`, so checking for an existing child and creating it is atomic.
        """
        if self._used < self._max:
            self._used += 1
            return True
        return False

    def release(self) -> None:
        """Give back one series (a child was removed); the caller must hold `lock`."""
        self._used = max(0, self._used - 1)

    def drop(self, _value: float = 1.0) -> None:
        """Count one dropped observation (usable as a stand-in for observe/inc/set)."""
        self._dropped.inc()
        if not self._warned:
            self._warned = True
            logger.warning(
                "qw_metrics series budget of %d label children is used up: observations for new "
                "label sets are dropped and counted in qw_metrics_series_dropped_total. Raise it "
                "with qw_metrics.set_series_budget(n) or use fewer label values.",
                self._max,
            )


def _checked_max(max_series: int) -> int:
    if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 0:
        raise ValueError(f"max_series must be an int >= 0, not {max_series!r}")
    return max_series


_BUDGETS: weakref.WeakKeyDictionary[CollectorRegistry, SeriesBudget] = weakref.WeakKeyDictionary()
_BUDGETS_LOCK = threading.Lock()


def series_budget(registry: CollectorRegistry | None = None) -> SeriesBudget:
    """The series budget of `registry` (the default registry when None), created on first use."""
    target = resolve_registry(registry)
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(target)
        if budget is None:
            budget = _BUDGETS[target] = SeriesBudget(target)
        return budget


def set_series_budget(max_series: int, registry: CollectorRegistry | None = None) -> None:
    """Cap the label children qw_metrics may create in `registry` (default: 10,000)."""
    series_budget(registry).set_max(max_series)
