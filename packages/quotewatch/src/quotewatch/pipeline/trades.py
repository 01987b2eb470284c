"""The trade buffer: the most recent trades per product and their signed volume over a window."""

from __future__ import annotations

from collections import deque

from qw_metrics import track_buffer

from quotewatch.metrics import TRADE_BUFFER
from quotewatch.state import TradeView

TRADE_BUFFER_CAPACITY = 1000


@track_buffer(TRADE_BUFFER, capacity="capacity", attr="_trades")
class TradeBuffer:
    """Holds up to `capacity` recent trades; answers signed taker volume over the last window.

    Signed volume counts a taker buy as +size and a taker sell as -size. The window is kept as a
    running sum over a suffix of the buffer, so `signed_volume` costs O(trades leaving the
    window), not O(buffer).
    """

    __slots__ = (
        "__weakref__",
        "_recent",
        "_trades",
        "_window",
        "_window_sum",
        "_window_us",
        "capacity",
    )

    def __init__(self, capacity: int = TRADE_BUFFER_CAPACITY, window_us: int = 5_000_000) -> None:
        if capacity < 1:
            raise ValueError(f"trade buffer capacity must be >= 1, got {capacity}")
        if window_us <= 0:
            raise ValueError(f"trade window must be > 0 µs, got {window_us}")
        self.capacity = capacity
        self._window_us = window_us
        self._trades: deque[TradeView] = deque()
        # (time_us, signed size) for the trades still inside the window: a suffix of _trades.
        self._window: deque[tuple[int, float]] = deque()
        self._window_sum = 0.0
        self._recent: tuple[TradeView, ...] | None = None

    def __len__(self) -> int:
        return len(self._trades)

    def add(self, trade: TradeView) -> None:
        """Append `trade`, dropping the oldest trade when the buffer is full."""
        trades = self._trades
        if len(trades) >= self.capacity:
            trades.popleft()
            # The window is a suffix of the buffer; it held the dropped trade only if it held all.
            if len(self._window) > len(trades):
                self._window_sum -= self._window.popleft()[1]
        trades.append(trade)
        signed = trade.size if trade.taker_side == "buy" else -trade.size
        self._window.append((trade.time_us, signed))
        self._window_sum += signed
        self._recent = None

    def signed_volume(self, now_us: int) -> float:
        """Taker buy volume minus taker sell volume over the trades in (now - window, now]."""
        window = self._window
        cutoff = now_us - self._window_us
        while window and window[0][0] <= cutoff:
            self._window_sum -= window.popleft()[1]
        if not window:
            self._window_sum = 0.0  # drop accumulated rounding error
        return self._window_sum

    def recent(self, n: int) -> tuple[TradeView, ...]:
        """The last `n` trades, oldest first (cached until the next `add`)."""
        if self._recent is None or len(self._recent) != min(n, len(self._trades)):
            trades = self._trades
            start = max(0, len(trades) - n)
            self._recent = tuple(trades[i] for i in range(start, len(trades)))
        return self._recent
