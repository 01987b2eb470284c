"""RollingRate: events per second over a sliding window, for a Gauge's set_function."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

_SLOTS = 20


class RollingRate:
    """Counts events in time slots and reports their rate over the last `window` seconds.

    `inc` is accepted by `counted` as a target; pass `rate` to `Gauge.set_function`. The window
    is split in 20 slots; the slot straddling the window's start counts in proportion to the
    part of it inside the window. The rate is always the events in the window divided by the
    whole window, so during the first window it reads low, never high.
    """

    def __init__(self, window: float = 10.0, *, clock: Callable[[], float] = time.monotonic):
        if not (isinstance(window, int | float) and math.isfinite(window) and window > 0):
            raise ValueError(f"window must be a positive number of seconds, not {window!r}")
        self.window = float(window)
        self._width = self.window / _SLOTS
        self._clock = clock
        self._lock = threading.Lock()
        self._counts = [0.0] * (_SLOTS + 1)
        self._current = self._slot(clock())

    def _slot(self, now: float) -> int:
        return math.floor(now / self._width)

    def _advance(self, now: float) -> None:
        slot = self._slot(now)
        if slot > self._current:
            for index in range(self._current + 1, min(slot, self._current + _SLOTS + 1) + 1):
                self._counts[index % (_SLOTS + 1)] = 0.0
            self._current = slot

    def inc(self, amount: float = 1) -> None:
        """Count `amount` events now."""
        now = self._clock()
        with self._lock:
            self._advance(now)
            self._counts[self._current % (_SLOTS + 1)] += amount

    def rate(self) -> float:
        """Events in the last `window` seconds, divided by `window`."""
        now = self._clock()
        with self._lock:
            self._advance(now)
            # As much of the oldest slot has left the window as of the current slot has elapsed.
            elapsed = (now - self._current * self._width) / self._width
            oldest = self._counts[(self._current + 1) % (_SLOTS + 1)]
            total = sum(self._counts) - oldest * elapsed
        return total / self.window

    def __repr__(self) -> str:
        return f"RollingRate(window={self.window})"
