"""`counted` and `recorded`: turn what a function returns into counter increments and gauge or
histogram values, without touching its body."""

from __future__ import annotations

import functools
import inspect
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram
from prometheus_client import Summary as PromSummary

from ._children import (
    CallLabels,
    PerCallChildren,
    Record,
    bind,
    check_static_labels,
    metric_name,
)
from ._report import report_once
from ._wrapping import check_decoratable, unwrap_descriptor
from .budget import series_budget
from .config import instrumentation_disabled
from .counter import Counter, CounterChild
from .histogram import Histogram, HistogramChild
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
    return _result_decorator(
        "counted",
        counter,
        "inc",
        amount=amount,
        labels_from_result=labels_from_result,
        registry=registry,
        labels=labels,
    )


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
    return _result_decorator(
        "recorded",
        metric,
        method,
        amount=value,
        labels_from_result=labels_from_result,
        registry=registry,
        labels=labels,
    )


def _result_decorator(
    name: str,
    metric: object,
    method: str,
    *,
    amount: float | Callable[[Any], float | None],
    labels_from_result: LabelsFromResult | None,
    registry: CollectorRegistry | None,
    labels: Mapping[str, object],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        if instrumentation_disabled():
            return func
        plan = _plan(
            name,
            metric,
            method,
            amount=amount,
            labels_from_result=labels_from_result,
            registry=registry,
            labels=labels,
        )
        wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = functools.partial(_wrap, plan)
        decorated: Callable[P, R] = unwrap_descriptor(func, wrap)
        return decorated

    return decorate


@dataclass(frozen=True)
class _Plan:
    """The series resolved for one decorator, and what to record from each result."""

    name: str
    site: str
    amount: float | Callable[[Any], float | None]
    record: Record | None  # the fixed series, with static labels only
    labels_from_result: LabelsFromResult | None
    get: Callable[[CallLabels], Record] | None  # the series per call, with labels_from_result


def _plan(
    name: str,
    metric: object,
    method: str,
    *,
    amount: float | Callable[[Any], float | None],
    labels_from_result: LabelsFromResult | None,
    registry: CollectorRegistry | None,
    labels: Mapping[str, object],
) -> _Plan:
    """Resolve the series now (static labels) or how to find it per call."""
    budget = series_budget(registry)
    names = check_static_labels(metric, labels, complete=labels_from_result is None)
    site = f"{name}:{metric_name(metric)}"
    if labels_from_result is None:
        record, _ = bind(metric, method, tuple(str(labels[n]) for n in names), budget)
        return _Plan(name, site, amount, record, None, None)
    children = PerCallChildren(metric, method, names, labels, budget)
    return _Plan(name, site, amount, None, labels_from_result, children.get)


def _wrap(plan: _Plan, func: Callable[..., Any]) -> Callable[..., Any]:
    check_decoratable(func, plan.name)
    if inspect.iscoroutinefunction(func):
        wrapper = _async_call(plan, func)
    elif plan.labels_from_result is not None:
        wrapper = _per_call(plan, plan.labels_from_result, func)
    elif callable(plan.amount):
        wrapper = _value_call(plan, plan.amount, func)
    else:
        wrapper = _fixed_call(plan, plan.amount, func)
    return functools.wraps(func)(wrapper)


# The sync wrappers below are the per-call hot path: everything they need is bound into closure
# locals, and each handles one case so it makes no decisions per call.


def _fixed_call(plan: _Plan, amount: float, func: Callable[..., Any]) -> Callable[..., Any]:
    """A constant amount into a fixed series."""
    assert plan.record is not None
    record, site, message = plan.record, plan.site, _message(plan)

    def call(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        try:
            record(amount)
        except Exception:
            report_once(site, message)
        return result

    return call


def _value_call(
    plan: _Plan, value: Callable[[Any], float | None], func: Callable[..., Any]
) -> Callable[..., Any]:
    """An amount taken from the result into a fixed series."""
    assert plan.record is not None
    record, site, message = plan.record, plan.site, _message(plan)
    child = getattr(record, "__self__", None)
    if type(child) is HistogramChild:
        return _observe_call(child, value, site, message, func)

    def call(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        try:
            number = value(result)
            if number is not None:
                record(number)
        except Exception:
            report_once(site, message)
        return result

    return call


def _observe_call(
    child: HistogramChild,
    value: Callable[[Any], float | None],
    site: str,
    message: str,
    func: Callable[..., Any],
) -> Callable[..., Any]:
    """`_value_call` into a lean histogram, its observe inlined."""
    local, bounds, new_shard = child.hot_path()

    def call(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        try:
            number = value(result)
            if number is not None:
                try:
                    shard: list[float] = local.shard
                except AttributeError:
                    shard = new_shard()
                shard[bisect_left(bounds, number)] += 1
                shard[-1] += number
        except Exception:
            report_once(site, message)
        return result

    return call


def _per_call(
    plan: _Plan, labels_from_result: LabelsFromResult, func: Callable[..., Any]
) -> Callable[..., Any]:
    """Label values taken from the result; the series for them is cached."""
    assert plan.get is not None
    get, amount, site, message = plan.get, plan.amount, plan.site, _message(plan)
    if callable(amount):
        value = amount

        def call(*args: Any, **kwargs: Any) -> Any:
            result = func(*args, **kwargs)
            try:
                labels = labels_from_result(result)
                if labels is not None:
                    number = value(result)
                    if number is not None:
                        get(labels)(number)
            except Exception:
                report_once(site, message)
            return result

        return call

    fixed = amount

    def fixed_call(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        try:
            labels = labels_from_result(result)
            if labels is not None:
                get(labels)(fixed)
        except Exception:
            report_once(site, message)
        return result

    return fixed_call


def _async_call(plan: _Plan, func: Callable[..., Any]) -> Callable[..., Any]:
    after = _after(plan)

    async def call(*args: Any, **kwargs: Any) -> Any:
        result = await func(*args, **kwargs)
        after(result)
        return result

    return call


def _after(plan: _Plan) -> Callable[[Any], None]:
    """What to do with one result, never raising."""
    amount, labels_from_result, record, get = (
        plan.amount, plan.labels_from_result, plan.record, plan.get
    )  # fmt: skip
    site, message = plan.site, _message(plan)

    def after(result: Any) -> None:
        try:
            target = record
            if labels_from_result is not None:
                labels = labels_from_result(result)
                if labels is None:
                    return
                assert get is not None
                target = get(labels)
            number = amount(result) if callable(amount) else amount
            if number is not None and target is not None:
                target(number)
        except Exception:
            report_once(site, message)

    return after


def _message(plan: _Plan) -> str:
    return f"qw_metrics {plan.name}() could not record a call's result"
