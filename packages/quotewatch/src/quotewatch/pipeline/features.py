"""Order-book features, computed on every book update from the top of the book.

All features are floats. The window features (`volatility`, `trade_imbalance`) keep running
sums over a window in exchange time, so each update costs O(levels read + samples leaving the
window).

Features, in `FEATURE_NAMES` order:
- `spread_bps`: (best ask - best bid) / mid, in basis points.
- `imbalance`: (bid size - ask size) / (bid size + ask size) at the best level, in [-1, 1].
- `imbalance_weighted`: the same over the top `imbalance_levels` levels per side, level i
  (0 = best) weighted by 1 / (i + 1).
- `depth`: total size resting in the top `depth_levels` levels of both sides.
- `volatility`: sample standard deviation of the mid's changes, in basis points, over the
  updates in the last `volatility_window_us` of exchange time (0 with fewer than two changes).
  Every update with a mid contributes one change, zero included.
- `trade_imbalance`: taker buy volume minus taker sell volume over the last `trade_window_us`
  of exchange time, from the trade buffer.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from qw_metrics import timed

from quotewatch.pipeline.trades import TradeBuffer
from quotewatch.rows import FEATURE_NAMES

_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


class FeatureVector(Mapping[str, float]):
    """One feature vector as a read-only mapping name -> value, in `FEATURE_NAMES` order.

    The state snapshot carries one per book update; wrapping the values tuple costs a third of
    building a dict and a MappingProxyType over it.
    """

    __slots__ = ("_values",)

    def __init__(self, values: tuple[float, ...]) -> None:
        if len(values) != len(FEATURE_NAMES):
            raise ValueError(
                f"expected {len(FEATURE_NAMES)} values ({', '.join(FEATURE_NAMES)}), "
                f"got {len(values)}"
            )
        self._values = values

    def __getitem__(self, name: str) -> float:
        return self._values[_INDEX[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(FEATURE_NAMES)

    def __len__(self) -> int:
        return len(FEATURE_NAMES)

    def __repr__(self) -> str:
        return f"FeatureVector({dict(self)!r})"


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Feature parameters."""

    imbalance_levels: int = 5
    depth_levels: int = 10
    volatility_window_us: int = 5_000_000
    trade_window_us: int = 5_000_000

    def __post_init__(self) -> None:
        for name in ("imbalance_levels", "depth_levels", "volatility_window_us", "trade_window_us"):
            if getattr(self, name) < 1:
                raise ValueError(f"FeatureConfig.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def levels_needed(self) -> int:
        """How many levels per side `compute` reads."""
        return max(self.imbalance_levels, self.depth_levels)


class RollingStd:
    """Sample standard deviation of values over a window of exchange time, kept incrementally.

    Welford's running mean and sum of squared deviations, updated on both add and expiry: a
    plain sum of squares loses the variance to cancellation when values are large next to
    their spread.
    """

    __slots__ = ("_m2", "_mean", "_values", "_window_us")

    def __init__(self, window_us: int) -> None:
        self._window_us = window_us
        self._values: deque[tuple[int, float]] = deque()
        self._mean = 0.0
        self._m2 = 0.0

    def add(self, time_us: int, value: float) -> None:
        """Record `value` observed at `time_us`."""
        self._values.append((time_us, value))
        delta = value - self._mean
        self._mean += delta / len(self._values)
        self._m2 += delta * (value - self._mean)

    def std(self, now_us: int) -> float:
        """Standard deviation over values in (now - window, now]; 0.0 with fewer than two."""
        values = self._values
        cutoff = now_us - self._window_us
        while values and values[0][0] <= cutoff:
            old = values.popleft()[1]
            if not values:
                self._mean = self._m2 = 0.0
                break
            delta = old - self._mean
            self._mean -= delta / len(values)
            self._m2 -= delta * (old - self._mean)
        n = len(values)
        if n < 2:
            return 0.0
        var = self._m2 / (n - 1)
        return math.sqrt(var) if var > 0.0 else 0.0


class FeatureExtractor:
    """Computes the feature vector for one product on each book update."""

    __slots__ = ("_config", "_last_mid", "_mid_changes", "_trades", "_weights")

    def __init__(self, trades: TradeBuffer, config: FeatureConfig | None = None) -> None:
        self._config = config = config or FeatureConfig()
        self._trades = trades
        self._weights = tuple(1.0 / (i + 1) for i in range(config.imbalance_levels))
        self._mid_changes = RollingStd(config.volatility_window_us)
        self._last_mid: float | None = None

    @property
    def config(self) -> FeatureConfig:
        """The parameters in use."""
        return self._config

    @timed(stage="features")
    def compute(
        self,
        time_us: int,
        bid: float,
        ask: float,
        bid_sizes: Sequence[float],
        ask_sizes: Sequence[float],
    ) -> tuple[float, ...]:
        """Features for the book with best prices `bid`/`ask` and best-first level sizes.

        `bid_sizes`/`ask_sizes` must be non-empty and hold at least `levels_needed` levels when
        the book has them. Call once per update, in exchange-time order: the volatility window
        records each call.
        """
        mid = (bid + ask) * 0.5
        spread_bps = (ask - bid) / mid * 1e4 if mid > 0 else 0.0
        top = bid_sizes[0] + ask_sizes[0]
        imbalance = (bid_sizes[0] - ask_sizes[0]) / top if top > 0 else 0.0

        wb = wa = 0.0
        for w, size in zip(self._weights, bid_sizes, strict=False):
            wb += w * size
        for w, size in zip(self._weights, ask_sizes, strict=False):
            wa += w * size
        weighted = (wb - wa) / (wb + wa) if wb + wa > 0 else 0.0

        n = self._config.depth_levels
        depth = sum(bid_sizes[:n]) + sum(ask_sizes[:n])

        last = self._last_mid
        if last is not None and last > 0:
            self._mid_changes.add(time_us, (mid - last) / last * 1e4)
        self._last_mid = mid
        volatility = self._mid_changes.std(time_us)

        return (
            spread_bps,
            imbalance,
            weighted,
            depth,
            volatility,
            self._trades.signed_volume(time_us),
        )
