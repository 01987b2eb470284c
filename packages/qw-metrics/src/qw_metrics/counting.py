"""`counted` and `recorded`: turn what a function returns into counter increments and gauge or
histogram values, without touching its body."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram
from prometheus_client import Summary as PromSummary

from . import _native
from ._children import (
    CallLabels,
    PerCallChildren,
    Record,
    bind,
    check_static_labels,
    metric_name,
)
from ._forwarding import compile_wrapper, fill
from ._report import report_once
from ._sharded import INLINE_OBSERVE, ShardedCounts, inline_observe_names
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
    plan = functools.partial(
        _plan,
        "counted",
        counter,
        "inc",
        amount=amount,
        labels_from_result=labels_from_result,
        registry=registry,
        labels=labels,
    )
    return _result_decorator(plan)


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
    plan = functools.partial(
        _plan,
        "recorded",
        metric,
        method,
        amount=value,
        labels_from_result=labels_from_result,
        registry=registry,
        labels=labels,
    )
    return _result_decorator(plan)


def seconds_since(timestamp: float | None) -> float | None:
    """Seconds from `timestamp` (a `time.time()` reading) to now, None for None: the value for
    `recorded` on a function that returns when its input arrived."""
    return None if timestamp is None else time.time() - timestamp


def _result_decorator(plan: Callable[[], _Plan]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator wrapping with the plan `plan()` resolves at decoration."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        if instrumentation_disabled():
            return func
        wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = functools.partial(_wrap, plan())
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
    else:
        wrapper = _sync_call(plan, func)
    return functools.wraps(func)(wrapper)


# The sync wrappers are the per-call hot path: each handles one case, so it makes no decisions
# per call, and is compiled with the wrapped function's own parameters (see _forwarding).
_AFTER_CALL = """
def _qw_wrapper(__PARAMS__):
    _qw_result = _qw_func(__ARGS__)
    try:
        __RECORD__
    except Exception:
        _qw_report_once(_qw_site, _qw_message)
    return _qw_result
"""
# Record the value taken from the result, unless it is None.
_IF_VALUE = """
_qw_number = _qw_value(_qw_result)
if _qw_number is not None:
    __RECORD__
"""
# Label values taken from the result; the series for them is cached by `_qw_get`.
_IF_LABELS = """
_qw_labels = _qw_labels_from_result(_qw_result)
if _qw_labels is not None:
    __RECORD__
"""
_FIXED = fill(_AFTER_CALL, record="_qw_record(_qw_amount)")
_VALUE = fill(_AFTER_CALL, record=fill(_IF_VALUE, record="_qw_record(_qw_number)"))
# _VALUE into a lean histogram's pure-Python counts, their observe inlined (where the C
# speedups are built, the C ObservedCall does this instead).
_OBSERVE = fill(
    _AFTER_CALL,
    record=fill(_IF_VALUE, record=INLINE_OBSERVE.replace("__VALUE__", "_qw_number")),
)
_PER_CALL_FIXED = fill(
    _AFTER_CALL, record=fill(_IF_LABELS, record="_qw_get(_qw_labels)(_qw_amount)")
)
_PER_CALL_VALUE = fill(
    _AFTER_CALL,
    record=fill(_IF_LABELS, record=fill(_IF_VALUE, record="_qw_get(_qw_labels)(_qw_number)")),
)


def _sync_call(plan: _Plan, func: Callable[..., Any]) -> Callable[..., Any]:
    """The compiled wrapper for `plan`'s case."""
    names: dict[str, object] = {
        "_qw_site": plan.site, "_qw_message": _message(plan), "_qw_report_once": report_once,
    }  # fmt: skip
    amount = plan.amount
    if callable(amount):
        names["_qw_value"] = amount
    else:
        names["_qw_amount"] = amount
    if plan.labels_from_result is not None:
        names.update(_qw_labels_from_result=plan.labels_from_result, _qw_get=plan.get)
        template = _PER_CALL_VALUE if callable(amount) else _PER_CALL_FIXED
        return compile_wrapper(template, func, names)
    names["_qw_record"] = plan.record
    if not callable(amount):
        return compile_wrapper(_FIXED, func, names)
    child = getattr(plan.record, "__self__", None)
    if type(child) is HistogramChild:
        counts = child.counts
        if isinstance(counts, ShardedCounts):
            return compile_wrapper(_OBSERVE, func, {**names, **inline_observe_names(counts)})
        on_error = functools.partial(report_once, plan.site, _message(plan))
        if amount is seconds_since:  # computed in C, without calling it
            return _native.ObservedCall(func, counts, age=True, on_error=on_error)
        return _native.ObservedCall(func, counts, value=amount, on_error=on_error)
    return compile_wrapper(_VALUE, func, names)


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
