"""`timed`: record how long a function call or a `with` block takes.

`timed(stage="features")` records into the per-registry stage histogram
(`pipeline_callback_duration_seconds{stage=...}` unless `configure_stages` says otherwise);
`timed(SOME_HISTOGRAM, **labels)` records into a given histogram or summary. Static labels are
validated and their series resolved once, at decoration, so a call costs two clock reads and one
lean observe.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from types import TracebackType
from typing import Any, ClassVar, Final, ParamSpec, TypeVar, overload

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client import Summary as PromSummary

from . import _native
from ._children import (
    LabelError,
    PerCallChildren,
    Record,
    bind,
    check_static_labels,
    free_label_names,
    metric_name,
)
from ._forwarding import compile_wrapper, fill
from ._names import validate_metric_name
from ._registries import resolve_registry
from ._report import report_once
from ._sharded import INLINE_OBSERVE, ShardedCounts, inline_observe_names
from ._wrapping import check_decoratable, unwrap_descriptor
from .budget import SeriesBudget, series_budget
from .config import instrumentation_disabled
from .histogram import Histogram, HistogramChild, prepare_buckets

P = ParamSpec("P")
R = TypeVar("R")

STAGE_METRIC_NAME: Final = "pipeline_callback_duration_seconds"
STAGE_DOCUMENTATION: Final = "Time spent in one pipeline stage callback, by stage."
# 50 µs to 10 s: pipeline stages run in microseconds, flushes take seconds.
STAGE_BUCKETS: Final[tuple[float, ...]] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

Timeable = PromHistogram | PromSummary | Histogram | HistogramChild
LabelsFromArgs = Callable[..., Mapping[str, object]]


class StageConfigError(ValueError):
    """The stage histogram of a registry was configured twice, differently."""


@dataclass(frozen=True)
class _StageConfig:
    name: str
    documentation: str
    buckets: tuple[float, ...]


@dataclass
class _Stages:
    config: _StageConfig
    histogram: Histogram | None = None


_STAGES: weakref.WeakKeyDictionary[CollectorRegistry, _Stages] = weakref.WeakKeyDictionary()
_STAGES_LOCK = threading.Lock()
_DEFAULT_STAGES = _StageConfig(
    STAGE_METRIC_NAME, STAGE_DOCUMENTATION, prepare_buckets(STAGE_BUCKETS)
)


def configure_stages(
    registry: CollectorRegistry | None = None,
    *,
    name: str = STAGE_METRIC_NAME,
    documentation: str = STAGE_DOCUMENTATION,
    buckets: Sequence[float] = STAGE_BUCKETS,
) -> None:
    """Set the name, help text and buckets of the histogram `timed(stage=...)` records into.

    Once per registry, before the first `timed(stage=...)` for it; repeating the same settings
    is harmless, different ones raise StageConfigError.
    """
    config = _StageConfig(validate_metric_name(name), documentation, prepare_buckets(buckets))
    target = resolve_registry(registry)
    with _STAGES_LOCK:
        stages = _STAGES.get(target)
        if stages is None:
            _STAGES[target] = _Stages(config)
            return
        if stages.config != config:
            state = "in use" if stages.histogram is not None else "configured"
            raise StageConfigError(
                f"the stage histogram of this registry is already {state} as {stages.config}; "
                f"cannot change it to {config}. Call configure_stages once, "
                "before timed(stage=...)."
            )


def stage_histogram(registry: CollectorRegistry | None = None) -> Histogram:
    """The histogram `timed(stage=...)` records into for `registry`, created on first use."""
    target = resolve_registry(registry)
    with _STAGES_LOCK:
        stages = _STAGES.get(target)
        if stages is None:
            stages = _STAGES[target] = _Stages(_DEFAULT_STAGES)
        if stages.histogram is None:
            config = stages.config
            stages.histogram = Histogram(
                config.name,
                config.documentation,
                ("stage",),
                buckets=config.buckets,
                registry=target,
            )
        return stages.histogram


class _ExceptionCounting:
    """Counts exceptions from a timed call in a Counter, labelled from the call's labels."""

    def __init__(
        self, counter: PromCounter, label_names: tuple[str, ...], budget: SeriesBudget
    ) -> None:
        names = free_label_names(counter)
        unknown = sorted(set(names) - set(label_names) - {"exception"})
        if unknown:
            raise LabelError(
                f"count_exceptions counter {metric_name(counter)!r} has labels {unknown} that "
                f"the timed series does not have ({list(label_names)}); it may use those and "
                "'exception' (the exception's class name)"
            )
        self._names = names
        self._children = PerCallChildren(counter, "inc", names, {}, budget)

    def count(self, exc: BaseException, labels: Mapping[str, object]) -> None:
        """Count `exc`, never raising."""
        try:
            wanted = {n: labels[n] for n in self._names if n != "exception"}
            if "exception" in self._names:
                wanted["exception"] = type(exc).__name__
            self._children.get(wanted)(1.0)
        except Exception:
            report_once("timed:count_exceptions", "qw_metrics could not count an exception")


@dataclass(frozen=True)
class _Plan:
    """Everything resolved for one `timed(...)` call; shared by every use of it."""

    record: Record | None
    static: Mapping[str, object]
    per_call: PerCallChildren | None
    labels_from_args: LabelsFromArgs | None
    exceptions: _ExceptionCounting | None
    disabled: bool
    rebuild: Callable[[], _Plan]


class Timed:
    """A timer over resolved series: decorate a function with it, or use it in a `with` block.

    One Timed times one block at a time: write `with timed(...):` at each block (cheap, the
    resolution is cached) rather than sharing one Timed between threads.
    """

    __slots__ = ("_start",)
    # Each cached `timed(...)` gets its own subclass holding its plan as a class attribute, so
    # creating a timer per `with` block runs no Python __init__ (half the cost).
    _plan: ClassVar[_Plan]

    def __enter__(self) -> Timed:
        self._start = perf_counter()
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        plan = self._plan
        try:
            plan.record(perf_counter() - self._start)  # type: ignore[misc]  # set unless per-call
        except Exception:
            report_once("timed:with", "qw_metrics could not record a duration")
        if exc is not None and plan.exceptions is not None and isinstance(exc, Exception):
            plan.exceptions.count(exc, plan.static)

    async def __aenter__(self) -> Timed:
        return self.__enter__()

    async def __aexit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(typ, exc, tb)

    @overload
    def __call__(self, func: staticmethod[P, R]) -> staticmethod[P, R]: ...
    @overload
    def __call__(self, func: classmethod[Any, P, R]) -> classmethod[Any, P, R]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, func: Any) -> Any:
        """Decorate `func` (function, method, static/class method, or `async def`)."""
        if instrumentation_disabled():
            return func
        plan = self._plan.rebuild() if self._plan.disabled else self._plan
        return unwrap_descriptor(func, lambda f: _decorate(plan, f))


class _LeanTimed(Timed):
    """A Timed whose series is a qw_metrics HistogramChild: observes its counts directly."""

    __slots__ = ()
    _observe: ClassVar[staticmethod[[float], None]]

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._observe(perf_counter() - self._start)


class _PerCallTimed(Timed):
    __slots__ = ()

    def __enter__(self) -> Timed:
        raise TypeError(
            "timed(labels_from_args=...) takes its labels from a call's arguments, so it only "
            "decorates functions; a `with` block has no arguments: give static labels instead"
        )


class _DisabledTimed(Timed):
    """What timed() returns under QW_METRICS_DISABLED=1: a no-op `with` block."""

    __slots__ = ()

    def __enter__(self) -> Timed:
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def timed(
    metric: Timeable | None = None,
    /,
    *,
    stage: str | None = None,
    labels_from_args: LabelsFromArgs | None = None,
    count_exceptions: PromCounter | None = None,
    registry: CollectorRegistry | None = None,
    **labels: object,
) -> Timed:
    """Time calls or a `with` block into a histogram or summary, in seconds.

    `timed(stage="x")` records into the stage histogram; `timed(metric, **labels)` into
    `metric` (qw_metrics or prometheus_client Histogram, or a Summary). `labels_from_args` is
    called with each call's arguments and returns further label values. `count_exceptions` is a
    Counter incremented when the call raises (its labels: any of the timed labels, plus
    `exception` for the exception's class name). With QW_METRICS_DISABLED=1 this is a no-op.
    """
    # `with timed(...)` runs this per block, so the common case is one tuple and one lookup.
    if labels:
        key: tuple[object, ...] = (
            metric, stage, labels_from_args, count_exceptions, registry, *labels.items()
        )  # fmt: skip
    else:
        key = (metric, stage, labels_from_args, count_exceptions, registry)
    try:
        entry = _TIMERS.get(key)
    except TypeError:  # an unhashable label value: resolve without the cache
        args = (metric, stage, labels_from_args, count_exceptions, registry)
        entry = _timer_class(_build_plan(args, labels))
    if entry is None:
        args = (metric, stage, labels_from_args, count_exceptions, registry)
        entry = _timer_class(_build_plan(args, labels))
        if len(_TIMERS) >= _MAX_CACHED_TIMERS:
            _TIMERS.clear()
        _TIMERS[key] = entry
    return entry()


def _timer_class(plan: _Plan) -> type[Timed]:
    if plan.disabled:
        base: type[Timed] = _DisabledTimed
    elif plan.labels_from_args is not None:
        base = _PerCallTimed
    else:
        child = _lean_child(plan)
        if child is not None:
            namespace = {
                "__slots__": (),
                "_plan": plan,
                "_observe": staticmethod(child.counts.observe),
            }
            return type("Timed", (_LeanTimed,), namespace)
        base = Timed
    return type(base.__name__, (base,), {"__slots__": (), "_plan": plan})


def _lean_child(plan: _Plan) -> HistogramChild | None:
    """The lean child a plan records into, if it can be observed inline (no exception counting)."""
    child = getattr(plan.record, "__self__", None)
    if type(child) is HistogramChild and plan.exceptions is None:
        return child
    return None


# `with timed(...)` resolves its labels once per distinct arguments, not once per block.
_TIMERS: dict[tuple[object, ...], type[Timed]] = {}
_MAX_CACHED_TIMERS = 4096


def _build_plan(
    args: tuple[
        Timeable | None,
        str | None,
        LabelsFromArgs | None,
        PromCounter | None,
        CollectorRegistry | None,
    ],
    labels: dict[str, object],
) -> _Plan:
    metric, stage, labels_from_args, count_exceptions, registry = args

    def rebuild() -> _Plan:
        return _build_plan(args, labels)

    if instrumentation_disabled():
        return _Plan(None, {}, None, None, None, disabled=True, rebuild=rebuild)
    target_registry = resolve_registry(registry)
    budget = series_budget(target_registry)
    if stage is not None:
        if metric is not None:
            raise TypeError("timed() takes a metric or stage=..., not both")
        metric = stage_histogram(target_registry)
        labels = {"stage": stage, **labels}
    if metric is None:
        raise TypeError("timed() needs a metric, e.g. timed(MY_HISTOGRAM), or stage='name'")
    if not isinstance(metric, PromHistogram | PromSummary | Histogram | HistogramChild):
        raise TypeError(
            f"timed() records into a Histogram or Summary, not {type(metric).__name__} "
            f"{metric_name(metric)!r}"
        )
    if labels_from_args is not None and not callable(labels_from_args):
        raise TypeError("labels_from_args must be a callable returning a mapping of labels")
    if count_exceptions is not None and not isinstance(count_exceptions, PromCounter):
        raise TypeError(
            f"count_exceptions must be a prometheus_client Counter, "
            f"not {type(count_exceptions).__name__}"
        )
    names = check_static_labels(metric, labels, complete=labels_from_args is None)
    exceptions = _ExceptionCounting(count_exceptions, names, budget) if count_exceptions else None
    if labels_from_args is not None:
        per_call = PerCallChildren(metric, "observe", names, labels, budget)
        return _Plan(None, labels, per_call, labels_from_args, exceptions, False, rebuild)
    values = tuple(str(labels[n]) for n in names)
    record, _ = bind(metric, "observe", values, budget)
    return _Plan(record, labels, None, None, exceptions, False, rebuild)


def _call_labels(
    plan: _Plan, site: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Record | None, Mapping[str, object]]:
    """The record callable and labels for one call, or (None, static) if they cannot be had."""
    if plan.per_call is None or plan.labels_from_args is None:
        return plan.record, plan.static
    try:
        dynamic = plan.labels_from_args(*args, **kwargs)
        return plan.per_call.get(dynamic), {**plan.static, **dynamic}
    except Exception:
        report_once(site, "qw_metrics could not label a timed call")
        return None, plan.static


def _decorate(plan: _Plan, func: Callable[..., Any]) -> Callable[..., Any]:
    check_decoratable(func, "timed")
    child = _lean_child(plan)
    counts = child.counts if child is not None else None
    if isinstance(counts, ShardedCounts):
        wrapper = compile_wrapper(_LEAN, func, {**inline_observe_names(counts), **_TIME_NAMES})
    elif counts is not None and not inspect.iscoroutinefunction(func):  # C counts
        wrapper = _native.ObservedCall(func, counts)
    elif plan.per_call is None and plan.exceptions is None:
        assert plan.record is not None
        wrapper = compile_wrapper(_FAST, func, {"_qw_record": plan.record, **_TIME_NAMES})
    else:
        site = f"timed:{getattr(func, '__qualname__', func)}"
        names = {
            "_qw_plan": plan, "_qw_site": site, "_qw_exceptions": plan.exceptions,
            "_qw_call_labels": _call_labels, **_TIME_NAMES,
        }  # fmt: skip
        wrapper = compile_wrapper(_GENERAL, func, names)
    return functools.wraps(func)(wrapper)


# The wrappers are compiled with the wrapped function's own parameters (see _forwarding), sync or
# async as the function is; a sync function timed into a lean histogram gets the C ObservedCall
# instead, where it is built.
_TIME_NAMES: Final = {"_qw_clock": perf_counter, "_qw_report_once": report_once}
_RECORD = """
try:
    _qw_record(_qw_elapsed)
except Exception:
    _qw_report_once("timed:call", "qw_metrics could not record a duration")
"""
_TIMED_CALL = """
def _qw_wrapper(__PARAMS__):
    _qw_start = _qw_clock()
    try:
        return __AWAIT___qw_func(__ARGS__)
    finally:
        _qw_elapsed = _qw_clock() - _qw_start
        __RECORD__
"""
# Into a lean histogram's pure-Python counts, their observe inlined.
_LEAN = fill(_TIMED_CALL, record=INLINE_OBSERVE.replace("__VALUE__", "_qw_elapsed"))
_FAST = fill(_TIMED_CALL, record=_RECORD)
# Per-call labels or exception counting: labels_from_args needs the arguments packed anyway.
_GENERAL = fill(
    """
def _qw_wrapper(*_qw_args, **_qw_kwargs):
    _qw_record, _qw_labels = _qw_call_labels(_qw_plan, _qw_site, _qw_args, _qw_kwargs)
    _qw_start = _qw_clock()
    try:
        return __AWAIT___qw_func(*_qw_args, **_qw_kwargs)
    except Exception as _qw_exc:
        if _qw_exceptions is not None:
            _qw_exceptions.count(_qw_exc, _qw_labels)
        raise
    finally:
        _qw_elapsed = _qw_clock() - _qw_start
        if _qw_record is not None:
            __RECORD__
""",
    record=_RECORD,
)
