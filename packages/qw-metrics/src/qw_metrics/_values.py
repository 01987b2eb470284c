"""The value store of every lean series: bucket counts and a sum (a counter's value is the sum).

`_speedups.Counts` in C where the extension is built (the GIL makes each update atomic), else
`ShardedCounts`; both put every value in the same bucket and add the sum in the same order.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, TypeAlias

from .errors import MultiprocessModeError

# The stores keep values in this process's memory, where prometheus_client's multiprocess
# collector (files merged at scrape) would never see them: refuse, rather than lose them.
for _variable in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
    if os.environ.get(_variable):
        raise MultiprocessModeError(
            f"qw_metrics does not support prometheus_client's multiprocess mode ({_variable} is "
            "set): its histograms, counters and timed() keep values in-process, so a multiprocess "
            "scrape would silently miss them. Unset it and expose or push metrics per process "
            "(e.g. one MetricsPusher per worker with an instance label)."
        )

try:
    from ._speedups import Counts as NativeCounts
    from ._speedups import ObservedCall

    BUILT = True
except ImportError:  # no C compiler or Python headers at install
    BUILT = False

Counts: TypeAlias = "NativeCounts | ShardedCounts"
# Every finite increment lands in the first bucket, so the pure-Python store needs no search.
COUNTER_BOUNDS = (sys.float_info.max, float("inf"))


def native_speedups() -> bool:
    """Whether this install runs `timed` and `recorded` through the C fast path."""
    return BUILT


def new_counts(bounds: tuple[float, ...]) -> Counts:
    """An empty store for `bounds` (strictly increasing, ending in +Inf)."""
    return NativeCounts(bounds) if BUILT else ShardedCounts(bounds)


def observed_call(func: Callable[..., Any], counts: object, **options: Any) -> Any:
    """`func` in the C `ObservedCall` observing into `counts` (options: _speedups.pyi), or None
    where `counts` is not a C store."""
    if not BUILT or type(counts) is not NativeCounts:
        return None
    return ObservedCall(func, counts, **options)


class ShardedCounts:
    """Bucket counts then the sum in one list per thread, so an update takes no lock; reading
    sums the lists, folding those of finished threads together."""

    __slots__ = ("_bounds", "_first", "_local", "_lock", "_retired", "_shards")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds, self._first = bounds, bounds[0]
        self._local = threading.local()
        self._lock = threading.Lock()
        self._shards: list[tuple[weakref.ref[threading.Thread], list[float]]] = []
        self._retired = [0.0] * (len(bounds) + 1)

    def observe(self, amount: float) -> None:
        """Record one value."""
        try:
            shard: list[float] = self._local.shard
        except AttributeError:
            shard = self._local.shard = [0] * len(self._bounds) + [0.0]
            with self._lock:
                self._shards.append((weakref.ref(threading.current_thread()), shard))
        if amount <= self._first:
            shard[0] += 1
        else:
            shard[bisect_left(self._bounds, amount)] += 1
        shard[-1] += amount

    def live_shards(self) -> int:
        """How many threads' lists are kept apart."""
        with self._lock:
            return len(self._shards)

    def snapshot(self) -> tuple[list[float], float]:
        """Per-bucket counts (not cumulative) and the sum of all values observed so far."""
        with self._lock:
            live = []
            for ref, shard in self._shards:
                thread = ref()
                if thread is None or not thread.is_alive():  # nothing writes it any more
                    self._retired[:] = map(sum, zip(self._retired, shard, strict=True))
                else:
                    live.append((ref, shard))
            self._shards = live
            total = list(self._retired)
            for _, shard in live:
                total[:] = map(sum, zip(total, shard, strict=True))
        return [int(c) for c in total[:-1]], total[-1]
