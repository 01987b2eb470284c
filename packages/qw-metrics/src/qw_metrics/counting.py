"""`counted` and `recorded`: turn what a function returns into counter increments and gauge or
histogram values, without touching its body."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram
from prometheus_client import Summary as PromSummary

from ._children import CallLabels, PerCallChildren, bind, check_static_labels, metric_name
from ._wrappers import Plan, decorate
from .budget import series_budget
from .lean import Counter, CounterChild, Histogram, HistogramChild
from .rolling_rate import RollingRate

P = ParamSpec("P")
R = TypeVar("R")

Countable = PromCounter | PromGauge | RollingRate | Counter | CounterChild
Recordable = PromGauge | PromHistogram | PromSummary | Histogram | HistogramChild
# The result's label values: a mapping, or for a metric with exactly one label name (and no
# static value for it) just that label's value as a string; None skips the call.
LabelsFromResult = Callable[[Any], CallLabels | None]


def counted(
    counter: Countable,
    /,
    *,
    amount: float | Callable[[Any], float] = 1,
    labels_from_result: LabelsFromResult | None = None,
    registry: CollectorRegistry | None = None,
    **labels: object,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Increment `counter` after each call returns (sync or async).

    `counter` is a prometheus_client Counter or Gauge, a qw_metrics Counter (cheapest) or a
    RollingRate. `amount` is a number or a function of the result (e.g. `len`);
    `labels_from_result` maps the result to further label values (a mapping; or, when the counter
    has exactly one label name, that label's value as a plain string, which is cheaper), or to
    None to skip counting that call. Calls that raise are not counted. `registry` selects the
    series budget (default registry when None).
    """
    if not isinstance(counter, PromCounter | PromGauge | RollingRate | Counter | CounterChild):
        raise TypeError(
            f"counted() increments a Counter, Gauge or RollingRate, not {type(counter).__name__}"
        )
    if not (callable(amount) or isinstance(amount, int | float)):
        raise TypeError(f"amount must be a number or a function of the result, not {amount!r}")
    plan = _plan("counted", counter, "inc", amount, labels_from_result, registry, labels)
    return lambda func: decorate(plan, func)


def recorded(
    metric: Recordable,
    /,
    *,
    value: Callable[[Any], float | None],
    labels_from_result: LabelsFromResult | None = None,
    registry: CollectorRegistry | None = None,
    **labels: object,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record `value(result)` after each call returns: Gauge -> set, Histogram/Summary ->
    observe. A value of None, or labels_from_result returning None, skips the call;
    `labels_from_result` returns label values as for `counted`."""
    if isinstance(metric, PromGauge):
        method = "set"
    elif isinstance(metric, PromHistogram | PromSummary | Histogram | HistogramChild):
        method = "observe"
    else:
        raise TypeError(
            f"recorded() sets a Gauge or observes a Histogram or Summary, "
            f"not {type(metric).__name__}"
        )
    if not callable(value):
        raise TypeError("value must be a function of the result, e.g. value=len")
    plan = _plan("recorded", metric, method, value, labels_from_result, registry, labels)
    return lambda func: decorate(plan, func)


def seconds_since(timestamp: float | None) -> float | None:
    """Seconds from `timestamp` (a `time.time()` reading) to now, None for None: the value for
    `recorded` on a function that returns when its input arrived."""
    return None if timestamp is None else time.time() - timestamp


def _plan(  # noqa: PLR0917  # the decorator's own arguments, passed on once
    name: str,
    metric: object,
    method: str,
    amount: float | Callable[[Any], float | None],
    labels_from_result: LabelsFromResult | None,
    registry: CollectorRegistry | None,
    labels: Mapping[str, object],
) -> Plan:
    """Resolve the series now (static labels) or how to find it per call."""
    budget = series_budget(registry)
    names = check_static_labels(metric, labels, complete=labels_from_result is None)
    site = f"{name}:{metric_name(metric)}"
    value = amount if callable(amount) else None
    fixed = 0.0 if callable(amount) else amount
    if labels_from_result is not None:
        get = PerCallChildren(metric, method, names, labels, budget).get

        def after_labelled(state: Any, result: Any, exc: BaseException | None) -> None:
            call_labels = labels_from_result(result)
            if call_labels is not None:
                number = fixed if value is None else value(result)
                if number is not None:
                    get(call_labels)(number)

        return Plan(name, site, False, after_labelled)
    record, _ = bind(metric, method, tuple(str(labels[n]) for n in names), budget)

    def after(state: Any, result: Any, exc: BaseException | None) -> None:
        number = fixed if value is None else value(result)
        if number is not None:
            record(number)

    child = getattr(record, "__self__", None)
    if value is None or type(child) is not HistogramChild:
        return Plan(name, site, False, after)
    # An observe of a lean histogram: where built, C takes the value (or the age) itself.
    return Plan(name, site, False, after, counts=child.counts, value=value,
                age=value is seconds_since)  # fmt: skip
