"""`track_buffer`: expose how full a buffer is, read only when metrics are collected.

The hot path does nothing: the tracker holds weak references to the tracked objects and calls
`len()` on them at collect time. Applied to a class it covers every instance, and the gauges
report the sum over the instances alive at that moment (sizes and capacities alike, so
size/capacity stays a fill ratio).
"""

from __future__ import annotations

import functools
import numbers
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from ._names import validate_metric_name
from ._wrappers import instrumentation_disabled, report_once
from .budget import resolve_registry

T = TypeVar("T")


class BufferTracker:
    """Collector for `<name>_buffer_size` and `<name>_buffer_capacity` over tracked objects."""

    def __init__(self, name: str, capacity: float | str, attr: str | None) -> None:
        self.name = name
        self.capacity = capacity
        self.attr = attr
        self._size_name = validate_metric_name(f"{name}_buffer_size")
        self._capacity_name = validate_metric_name(f"{name}_buffer_capacity")
        self._lock = threading.Lock()
        # Keyed by id(): tracked objects need not be hashable (a deque is not).
        self._refs: dict[int, weakref.ref[Any]] = {}

    def add(self, obj: object) -> None:
        """Track `obj` until it is garbage collected."""
        key = id(obj)

        def forget(_: weakref.ref[Any]) -> None:
            with self._lock:
                if self._refs.get(key) is ref:
                    del self._refs[key]

        try:
            ref = weakref.ref(obj, forget)
        except TypeError:
            raise TypeError(
                f"track_buffer({self.name!r}) cannot hold a {type(obj).__name__} weakly (it "
                "would keep it alive): track the object that owns it with attr='<its "
                "attribute>', or use a collections.deque"
            ) from None
        with self._lock:
            self._refs[key] = ref

    def measure(self, obj: object) -> tuple[float, float]:
        """(size, capacity) of one tracked object: len() of the buffer, or its qsize() for a
        queue; the capacity a number, or an attribute of the object, else of the buffer (a
        queue's `maxsize`, a deque's `maxlen`)."""
        buffer: Any = obj if self.attr is None else getattr(obj, self.attr)
        size = buffer.qsize() if not hasattr(buffer, "__len__") else len(buffer)
        capacity: object = self.capacity
        if isinstance(self.capacity, str):
            capacity = getattr(obj, self.capacity, None)
            if capacity is None:
                capacity = getattr(buffer, self.capacity, None)
        if not isinstance(capacity, numbers.Real):
            raise TypeError(
                f"capacity {self.capacity!r} of {type(obj).__name__} is {capacity!r}, not a "
                "number (an unbounded deque has maxlen None): give capacity=<number>"
            )
        return float(size), float(capacity)

    def describe(self) -> list[Metric]:
        """The two gauge families, without samples, for the registry's name-clash check."""
        return self._families(None, None)

    def collect(self) -> list[Metric]:
        """Sum size and capacity over the tracked objects alive now."""
        with self._lock:
            refs = list(self._refs.values())
        size = capacity = 0.0
        for ref in refs:
            obj = ref()
            if obj is None:
                continue
            try:
                one_size, one_capacity = self.measure(obj)
            except Exception:
                report_once(f"track_buffer:{self.name}", f"cannot measure buffer {self.name!r}")
                continue
            size += one_size
            capacity += one_capacity
        return self._families(size, capacity)

    def _families(self, size: float | None, capacity: float | None) -> list[Metric]:
        what = f"the {self.name} buffer (summed over live instances)."
        return [
            GaugeMetricFamily(self._size_name, f"Items in {what}", value=size),
            GaugeMetricFamily(self._capacity_name, f"Capacity of {what}", value=capacity),
        ]


_TRACKERS: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, BufferTracker]] = (
    weakref.WeakKeyDictionary()
)
_TRACKERS_LOCK = threading.Lock()


def track_buffer(
    name: str,
    *,
    capacity: float | str,
    attr: str | None = None,
    registry: CollectorRegistry | None = None,
) -> Callable[[T], T]:
    """Expose `<name>_buffer_size` and `<name>_buffer_capacity` gauges for an object or class.

    Apply the result to an object with len() or qsize() (a deque, a queue.Queue or
    asyncio.Queue; returned unchanged, held weakly) or to a class (every instance is tracked
    from its __init__). `attr` names the attribute holding the buffer (the object itself when
    None); `capacity` is a number or an attribute name (of the object, else of the buffer, such
    as "maxsize" or "maxlen").
    """
    if isinstance(capacity, bool) or not isinstance(capacity, numbers.Real | str):
        raise TypeError(f"capacity must be a number or an attribute name, not {capacity!r}")
    if isinstance(capacity, numbers.Real) and not capacity >= 0:
        raise ValueError(f"capacity must be >= 0, not {capacity!r}")
    if attr is not None and not (isinstance(attr, str) and attr.isidentifier()):
        raise TypeError(f"attr must be an attribute name or None, not {attr!r}")
    if isinstance(capacity, str) and not capacity.isidentifier():
        raise TypeError(f"capacity {capacity!r} is not an attribute name")
    validate_metric_name(f"{name}_buffer_size")
    if instrumentation_disabled():
        return lambda target: target
    tracker = _tracker(name, capacity, attr, resolve_registry(registry))

    def apply(target: T) -> T:
        if isinstance(target, type):
            _track_class(tracker, target)
        else:
            tracker.measure(target)  # a wrong attr or capacity fails here, not at scrape time
            tracker.add(target)
        return target

    return apply


def _tracker(
    name: str, capacity: float | str, attr: str | None, registry: CollectorRegistry
) -> BufferTracker:
    with _TRACKERS_LOCK:
        trackers = _TRACKERS.setdefault(registry, {})
        tracker = trackers.get(name)
        if tracker is None:
            tracker = BufferTracker(name, capacity, attr)
            registry.register(tracker)
            trackers[name] = tracker
        elif (tracker.capacity, tracker.attr) != (capacity, attr):
            raise ValueError(
                f"buffer {name!r} is already tracked with capacity={tracker.capacity!r}, "
                f"attr={tracker.attr!r}; got capacity={capacity!r}, attr={attr!r}"
            )
        return tracker


def _track_class(tracker: BufferTracker, cls: type) -> None:
    if cls.__weakrefoffset__ == 0:
        raise TypeError(
            f"track_buffer({tracker.name!r}) needs weak references to {cls.__name__} instances: "
            "add '__weakref__' to its __slots__"
        )
    original: Callable[..., None] = cls.__init__  # type: ignore[misc]

    @functools.wraps(original)
    def __init__(self: object, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            tracker.add(self)
        except Exception:
            report_once(f"track_buffer:{tracker.name}", f"cannot track buffer {tracker.name!r}")

    cls.__init__ = __init__  # type: ignore[misc]
