"""How every qw_metrics decorator wraps a function, decided once, at decoration, and `Timed`,
the object `timed(...)` returns: a decorator and a `with` block over one plan.

A series that is a lean histogram observed with nothing else to do gets the C `ObservedCall`,
which forwards the call and observes in C. Everything else gets one plain closure, sync or
async as the function is. `timing.py` and `counting.py` only describe what to record, as a
`Plan`; nothing the wrapper does for it can raise into the instrumented code.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from ._values import observed_call

DISABLED_ENV = "QW_METRICS_DISABLED"
P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("qw_metrics")
_reported: set[str] = set()
_reported_lock = threading.Lock()

# before(args, kwargs) -> state; after(state, duration or result, exception or None).
Before = Callable[[tuple[Any, ...], dict[str, Any]], Any]
After = Callable[[Any, Any, BaseException | None], None]


def instrumentation_disabled() -> bool:
    """True when QW_METRICS_DISABLED is 1/true/yes/on: instrumentation becomes pass-through."""
    return os.environ.get(DISABLED_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def report_once(site: str, message: str, exc: BaseException | None = None) -> None:
    """Log `exc`, or else the exception being handled, once per `site`, with `message`."""
    with _reported_lock:
        if site in _reported:
            return
        _reported.add(site)
    logger.warning("%s (%s; logged once)", message, site, exc_info=exc or True)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one decorator records per call, resolved when it is created."""

    name: str  # the decorator, for messages
    site: str  # where a failure is reported, once
    # `after` gets the call's duration (also when it raised), else its result (when it returned).
    timing: bool
    after: After
    # Turns the call's arguments into the state `after` gets first; None there: labelling failed.
    before: Before | None = None
    # A lean series that `after` only observes the duration or `value(result)` into (`age`: the
    # seconds since the `time.time()` the call returns), which the C wrapper can do by itself.
    counts: object = None
    value: Callable[[Any], float | None] | None = None
    age: bool = False


def decorate(plan: Plan, func: Any) -> Any:
    """`func` wrapped to carry out `plan` on every call, with its metadata; a staticmethod or
    classmethod stays one. Under QW_METRICS_DISABLED=1, `func` itself."""
    if instrumentation_disabled():
        return func
    if isinstance(func, staticmethod | classmethod):
        return type(func)(decorate(plan, func.__func__))
    _check_decoratable(func, plan.name)
    wrapper = None
    if plan.counts is not None and not inspect.iscoroutinefunction(func):
        options: dict[str, Any] = {}
        if not plan.timing:
            options["on_error"] = functools.partial(report_once, plan.site, _failed(plan, "record"))
            if plan.age:
                options["age"] = True
            else:
                options["value"] = plan.value
        wrapper = observed_call(func, plan.counts, **options)
    if wrapper is None:
        wrapper = _closure(plan, func)
    return functools.wraps(func)(wrapper)


def run_after(plan: Plan, state: Any, value: Any, exc: BaseException | None) -> None:
    """`plan.after(...)`, reporting (once) instead of raising when it fails."""
    try:
        plan.after(state, value, exc)
    except Exception:
        report_once(plan.site, _failed(plan, "record"))


def _closure(plan: Plan, func: Callable[..., Any]) -> Callable[..., Any]:
    before, after, timing, site = plan.before, plan.after, plan.timing, plan.site
    clock = perf_counter
    could_not = _failed(plan, "record")
    # A lean series and nothing else (where C could not take it): observed without `after`.
    observe = plan.counts.observe if timing and plan.counts is not None else None  # type: ignore[attr-defined]

    def prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return before(args, kwargs)  # type: ignore[misc]  # only called when set
        except Exception:
            report_once(site, _failed(plan, "label"))
            return None

    if inspect.iscoroutinefunction(func):

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            state = None if before is None else prepare(args, kwargs)
            start = clock()
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                if timing:
                    run_after(plan, state, clock() - start, exc)
                raise
            run_after(plan, state, clock() - start if timing else result, None)
            return result

        return call_async

    def call(*args: Any, **kwargs: Any) -> Any:
        if observe is not None:
            start = clock()
            try:
                return func(*args, **kwargs)
            finally:
                observe(clock() - start)
        state = None if before is None else prepare(args, kwargs)
        start = clock() if timing else 0.0
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            if timing:
                run_after(plan, state, clock() - start, exc)
            raise
        try:
            after(state, clock() - start if timing else result, None)
        except Exception:
            report_once(site, could_not)
        return result

    return call


def _failed(plan: Plan, what: str) -> str:
    return f"qw_metrics {plan.name}() could not {what} a call"


def _check_decoratable(func: object, decorator: str) -> None:
    """Raise TypeError for what the decorator cannot wrap: non-callables and generators."""
    if not callable(func):
        raise TypeError(f"{decorator} decorates functions, not {type(func).__name__} objects")
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{decorator} cannot decorate generator function "
            f"{getattr(func, '__qualname__', func)}: its body runs lazily as the caller "
            "iterates, so the call would only measure creating the generator. Decorate a "
            "function that consumes it instead."
        )


class Timed:
    """A timer over resolved series: decorate a function with it, or use it in a `with` or
    `async with` block.

    One Timed times one block at a time: write `with timed(...):` at each block (cheap, the
    resolution is cached) rather than sharing one Timed between threads.
    """

    __slots__ = ("_plan", "_start")

    def __init__(self, plan: Plan | None) -> None:
        self._plan = plan  # None under QW_METRICS_DISABLED=1

    def __enter__(self) -> Timed:
        if self._plan is not None and self._plan.before is not None:
            raise TypeError(
                "timed(labels_from_args=...) takes its labels from a call's arguments, so it "
                "only decorates functions; a `with` block has no arguments: give static labels "
                "instead"
            )
        self._start = perf_counter()
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        plan = self._plan
        if plan is None:
            return
        if plan.counts is not None:  # a lean series and nothing else: observe it directly
            plan.counts.observe(perf_counter() - self._start)  # type: ignore[attr-defined]
        else:
            run_after(plan, None, perf_counter() - self._start, exc)

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
        return func if self._plan is None else decorate(self._plan, func)
