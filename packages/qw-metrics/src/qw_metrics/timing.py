"""`timed`: record how long a function call or a `with` block takes.

`timed(stage="features")` records into the per-registry stage histogram
(`pipeline_callback_duration_seconds{stage=...}` unless `configure_stages` says otherwise);
`timed(SOME_HISTOGRAM, **labels)` records into a given histogram or summary. Static labels are
validated and their series resolved once, when `timed(...)` is called (and cached for `with`
blocks), so a call costs two clock reads and one lean observe.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client import Summary as PromSummary

from ._children import PerCallChildren, bind, check_static_labels, free_label_names, metric_name
from ._names import validate_metric_name
from ._wrappers import Plan, Timed, instrumentation_disabled
from .budget import SeriesBudget, resolve_registry, series_budget
from .errors import LabelError, StageConfigError
from .lean import Histogram, HistogramChild, prepare_buckets

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


# Per registry: [(name, documentation, buckets), the histogram once created].
_STAGES: weakref.WeakKeyDictionary[CollectorRegistry, list[Any]] = weakref.WeakKeyDictionary()
_STAGES_LOCK = threading.Lock()
_DEFAULT_STAGES = (STAGE_METRIC_NAME, STAGE_DOCUMENTATION, prepare_buckets(STAGE_BUCKETS))


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
    config = (validate_metric_name(name), documentation, prepare_buckets(buckets))
    with _STAGES_LOCK:
        stages = _STAGES.setdefault(resolve_registry(registry), [config, None])
    if stages[0] != config:
        state = "in use" if stages[1] is not None else "configured"
        raise StageConfigError(
            f"the stage histogram of this registry is already {state} as (name, documentation, "
            f"buckets) {stages[0]}; cannot change it to {config}. Call configure_stages once, "
            "before timed(stage=...)."
        )


def stage_histogram(registry: CollectorRegistry | None = None) -> Histogram:
    """The histogram `timed(stage=...)` records into for `registry`, created on first use."""
    target = resolve_registry(registry)
    with _STAGES_LOCK:
        stages = _STAGES.setdefault(target, [_DEFAULT_STAGES, None])
        if stages[1] is None:
            name, documentation, buckets = stages[0]
            stages[1] = Histogram(name, documentation, ("stage",), buckets=buckets, registry=target)
        histogram: Histogram = stages[1]
        return histogram


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
    key: tuple[object, ...] = (metric, stage, labels_from_args, count_exceptions, registry)
    if labels:
        key += tuple(labels.items())
    try:
        plan = _PLANS.get(key)
        cacheable = True
    except TypeError:  # an unhashable label value: resolve without the cache
        plan, cacheable = None, False
    if plan is None:
        # Read when resolving: the environment is too slow to read per block.
        if instrumentation_disabled():
            return Timed(None)
        plan = _plan(metric, stage, labels, labels_from_args, count_exceptions, registry)
        if cacheable:
            if len(_PLANS) >= _MAX_CACHED_PLANS:
                _PLANS.clear()
            _PLANS[key] = plan
    return Timed(plan)


_PLANS: dict[tuple[object, ...], Plan] = {}
_MAX_CACHED_PLANS = 4096


def _plan(  # noqa: PLR0917  # timed()'s own arguments, passed on once
    metric: Timeable | None,
    stage: str | None,
    labels: dict[str, object],
    labels_from_args: LabelsFromArgs | None,
    count_exceptions: PromCounter | None,
    registry: CollectorRegistry | None,
) -> Plan:
    target_registry = resolve_registry(registry)
    budget = series_budget(target_registry)
    if stage is not None:
        if metric is not None:
            raise TypeError("timed() takes a metric or stage=..., not both")
        if "buckets" in labels:
            raise TypeError(
                "timed(stage=...) takes no buckets: the stage histogram "
                f"({STAGE_METRIC_NAME} unless renamed) is shared by every stage, so its name, "
                "help and buckets are set once per registry, before the first timed(stage=...), "
                "with qw_metrics.configure_stages(registry, buckets=...)"
            )
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
    count = _exception_counter(count_exceptions, names, budget) if count_exceptions else None
    site = f"timed:{metric_name(metric)}"
    if labels_from_args is not None:
        per_call = PerCallChildren(metric, "observe", names, labels, budget)

        def before(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            dynamic = labels_from_args(*args, **kwargs)
            return per_call.get(dynamic), {**labels, **dynamic}

        def after_labelled(state: Any, elapsed: float, exc: BaseException | None) -> None:
            if state is not None:
                state[0](elapsed)
                if count is not None and isinstance(exc, Exception):
                    count(exc, state[1])

        return Plan("timed", site, True, after_labelled, before)
    record, _ = bind(metric, "observe", tuple(str(labels[n]) for n in names), budget)

    def after(state: Any, elapsed: float, exc: BaseException | None) -> None:
        record(elapsed)
        if count is not None and isinstance(exc, Exception):
            count(exc, labels)

    child = getattr(record, "__self__", None)
    lean = type(child) is HistogramChild and count is None
    return Plan("timed", site, True, after, counts=child.counts if lean else None)  # type: ignore[union-attr]


def _exception_counter(
    counter: PromCounter, label_names: tuple[str, ...], budget: SeriesBudget
) -> Callable[[BaseException, Mapping[str, object]], None]:
    """Counts an exception from a timed call in `counter`, labelled from the call's labels."""
    names = free_label_names(counter)
    unknown = sorted(set(names) - set(label_names) - {"exception"})
    if unknown:
        raise LabelError(
            f"count_exceptions counter {metric_name(counter)!r} has labels {unknown} that "
            f"the timed series does not have ({list(label_names)}); it may use those and "
            "'exception' (the exception's class name)"
        )
    children = PerCallChildren(counter, "inc", names, {}, budget)

    def count(exc: BaseException, labels: Mapping[str, object]) -> None:
        wanted = {n: labels[n] for n in names if n != "exception"}
        if "exception" in names:
            wanted["exception"] = type(exc).__name__
        children.get(wanted)(1.0)

    return count
