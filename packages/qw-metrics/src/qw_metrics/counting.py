"""`counted` and `recorded`: turn what a function returns into counter increments and gauge or
histogram values, without touching its body."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram
from prometheus_client import Summary as PromSummary

from ._children import PerCallChildren, Record, bind, check_static_labels, metric_name
from ._report import report_once
from ._wrapping import check_decoratable, unwrap_descriptor
from .budget import series_budget
from .config import instrumentation_disabled
from .histogram import Histogram, HistogramChild
from .rolling_rate import RollingRate

P = ParamSpec("P")
R = TypeVar("R")

Countable = PromCounter | PromGauge | RollingRate
Recordable = PromGauge | PromHistogram | PromSummary | Histogram | HistogramChild
LabelsFromResult = Callable[[Any], Mapping[str, object] | None]


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

    `amount` is a number or a function of the result (e.g. `len`); `labels_from_result` maps the
    result to further label values, or to None to skip counting that call. Calls that raise are
    not counted. `registry` selects the series budget (default registry when None).
    """
    if not isinstance(counter, PromCounter | PromGauge | RollingRate):
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
    observe. A value of None, or labels_from_result returning None, skips the call."""
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
        after = _after_call(
            name,
            metric,
            method,
            amount=amount,
            labels_from_result=labels_from_result,
            registry=registry,
            labels=labels,
        )
        wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = functools.partial(
            _wrap, name, after
        )
        decorated: Callable[P, R] = unwrap_descriptor(func, wrap)
        return decorated

    return decorate


def _after_call(
    name: str,
    metric: object,
    method: str,
    *,
    amount: float | Callable[[Any], float | None],
    labels_from_result: LabelsFromResult | None,
    registry: CollectorRegistry | None,
    labels: Mapping[str, object],
) -> Callable[[Any], None] | _Fixed:
    """Resolve the series now; return what to do with each call's result, or a _Fixed when
    every call records the same amount into the same series."""
    budget = series_budget(registry)
    names = check_static_labels(metric, labels, complete=labels_from_result is None)
    site = f"{name}:{metric_name(metric)}"
    if labels_from_result is None:
        record, _ = bind(metric, method, tuple(str(labels[n]) for n in names), budget)
        if not callable(amount):
            return _Fixed(record, amount, site)

        def after_static(result: Any) -> None:
            try:
                number = amount(result)
                if number is not None:
                    record(number)
            except Exception:
                report_once(site, f"qw_metrics {name}() could not record a call's result")

        return after_static

    children = PerCallChildren(metric, method, names, labels, budget)

    def after(result: Any) -> None:
        try:
            dynamic = labels_from_result(result)
            if dynamic is None:
                return
            number = amount(result) if callable(amount) else amount
            if number is not None:
                children.get(dynamic)(number)
        except Exception:
            report_once(site, f"qw_metrics {name}() could not record a call's result")

    return after


@dataclass(frozen=True)
class _Fixed:
    record: Record
    amount: float
    site: str


def _wrap(
    name: str, after: Callable[[Any], None] | _Fixed, func: Callable[..., Any]
) -> Callable[..., Any]:
    check_decoratable(func, name)
    if isinstance(after, _Fixed):
        if not inspect.iscoroutinefunction(func):
            return functools.wraps(func)(_fixed_call(name, after, func))
        after = _fixed_after(name, after)
    after_call = after
    if inspect.iscoroutinefunction(func):

        async def async_call(*args: Any, **kwargs: Any) -> Any:
            result = await func(*args, **kwargs)
            after_call(result)
            return result

        return functools.wraps(func)(async_call)

    def call(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        after_call(result)
        return result

    return functools.wraps(func)(call)


def _fixed_call(name: str, fixed: _Fixed, func: Callable[..., Any]) -> Callable[..., Any]:
    # The common case, a constant amount into a fixed series, without a call per call.
    record, amount, site = fixed.record, fixed.amount, fixed.site

    def call(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        try:
            record(amount)
        except Exception:
            report_once(site, f"qw_metrics {name}() could not record a call's result")
        return result

    return call


def _fixed_after(name: str, fixed: _Fixed) -> Callable[[Any], None]:
    def after(result: Any) -> None:
        try:
            fixed.record(fixed.amount)
        except Exception:
            report_once(fixed.site, f"qw_metrics {name}() could not record a call's result")

    return after
