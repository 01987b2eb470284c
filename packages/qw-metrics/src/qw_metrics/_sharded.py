"""Per-thread shards: the pure-Python store of lean counters, and of histogram series where the
C `_speedups` are not built.

Each thread writes into its own shard (a plain list; for a histogram, bucket counts then the
sum), so an update takes no lock and no allocation; reading sums the shards. Most observations
of a well-bucketed latency land in the first bucket, so that one is checked with a single
comparison before any binary search. `_speedups.Counts` does the same in C, where the GIL alone
makes an update atomic.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left


class ThreadShards:
    """Per-thread lists of numbers, each a copy of `zero`: a thread adds into its own without a
    lock, and `totals` sums them all."""

    __slots__ = ("_local", "_lock", "_retired", "_shards", "_zero")

    def __init__(self, zero: list[float]) -> None:
        self._zero = zero
        self._local = threading.local()
        self._lock = threading.Lock()
        # (thread, shard) per thread that wrote.
        self._shards: list[tuple[weakref.ref[threading.Thread], list[float]]] = []
        # Shards of finished threads, folded together so threads that come and go cost nothing.
        self._retired = list(zero)

    def _new_shard(self) -> list[float]:
        shard = list(self._zero)
        with self._lock:
            self._shards.append((weakref.ref(threading.current_thread()), shard))
        self._local.shard = shard
        return shard

    def live_shards(self) -> int:
        """How many threads' shards are kept apart (finished threads' are folded together)."""
        with self._lock:
            return len(self._shards)

    def totals(self) -> list[float]:
        """Every shard summed, position by position."""
        with self._lock:
            kept = []
            retired = self._retired
            for ref, shard in self._shards:
                thread = ref()
                if thread is None or not thread.is_alive():
                    # The thread has finished, so nothing writes this shard any more.
                    for i, value in enumerate(shard):
                        retired[i] += value
                else:
                    kept.append((ref, shard))
            self._shards = kept
            total = list(retired)
            for _, shard in kept:
                for i, value in enumerate(shard):
                    total[i] += value
        return total


class ShardedCounts(ThreadShards):
    """Bucket counts and sum of one histogram series, sharded per thread."""

    __slots__ = ("_bounds", "_first")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        super().__init__([0] * len(bounds) + [0.0])  # bucket counts, then the sum
        self._bounds = bounds
        self._first = bounds[0]

    def observe(self, amount: float) -> None:
        """Record one value."""
        try:
            shard: list[float] = self._local.shard
        except AttributeError:
            shard = self._new_shard()
        if amount <= self._first:
            shard[0] += 1
        else:
            shard[bisect_left(self._bounds, amount)] += 1
        shard[-1] += amount

    def snapshot(self) -> tuple[list[float], float]:
        """Per-bucket counts (not cumulative) and the sum of all values observed so far."""
        total = self.totals()
        return total[:-1], total[-1]


# ShardedCounts.observe(__VALUE__) as lines of a compiled wrapper (see _forwarding), for hot
# paths that save the call; `inline_observe_names` gives the names they use.
INLINE_OBSERVE = """
try:
    _qw_shard = _qw_local.shard
except AttributeError:
    _qw_shard = _qw_new_shard()
if __VALUE__ <= _qw_first:
    _qw_shard[0] += 1
else:
    _qw_shard[_qw_bisect(_qw_bounds, __VALUE__)] += 1
_qw_shard[-1] += __VALUE__
"""


def inline_observe_names(counts: ShardedCounts) -> dict[str, object]:
    """The globals INLINE_OBSERVE needs to observe into `counts`."""
    return {
        "_qw_local": counts._local, "_qw_bounds": counts._bounds, "_qw_first": counts._first,
        "_qw_new_shard": counts._new_shard, "_qw_bisect": bisect_left,
    }  # fmt: skip
