"""OHLC candles of the mid price, for the dashboard's chart."""

from __future__ import annotations

from collections import deque

from quotewatch.state import Candle


class CandleBuilder:
    """Builds candles of `interval_us` (exchange time) from mid ticks; keeps the last `keep`."""

    __slots__ = ("_closed", "_closed_view", "_current", "_interval_us", "_view")

    def __init__(self, interval_us: int = 1_000_000, keep: int = 120) -> None:
        if interval_us <= 0:
            raise ValueError(f"candle interval must be > 0 µs, got {interval_us}")
        if keep < 1:
            raise ValueError(f"candles to keep must be >= 1, got {keep}")
        self._interval_us = interval_us
        self._closed: deque[Candle] = deque(maxlen=keep - 1)
        self._closed_view: tuple[Candle, ...] = ()
        self._current: Candle | None = None
        self._view: tuple[Candle, ...] = ()

    def add(self, time_us: int, mid: float) -> None:
        """Fold one mid observed at `time_us` into its candle."""
        start = time_us - time_us % self._interval_us
        current = self._current
        if current is None or start > current.start_us:
            if current is not None:
                self._closed.append(current)
                self._closed_view = tuple(self._closed)
            current = Candle(start, mid, mid, mid, mid)
        elif mid == current.close:
            return  # nothing changed: keep the cached view
        else:
            # A late tick (start < current.start_us) folds into the forming candle.
            current = Candle(
                current.start_us,
                current.open,
                mid if mid > current.high else current.high,
                mid if mid < current.low else current.low,
                mid,
            )
        self._current = current
        self._view = (*self._closed_view, current)

    def candles(self) -> tuple[Candle, ...]:
        """All kept candles, oldest first; the last one is still forming."""
        return self._view
