"""Realistic, changing dashboard state for tests and benchmarks (no pipeline needed)."""

from __future__ import annotations

import math
from types import MappingProxyType

from quotewatch.rows import FEATURE_NAMES as FEATURES
from quotewatch.state import (
    CalibrationBin,
    Candle,
    ModelScores,
    ModelState,
    ProductState,
    TradeView,
)


def model_scores(step: int) -> ModelScores:
    """Prequential scores of a model somewhat better than the base rate."""
    bins = tuple(
        CalibrationBin(b / 10, (b + 1) / 10, b / 10 + 0.05, min(1.0, b / 10 + 0.03), 400 // (b + 1))
        for b in range(6)
    )
    return ModelScores(
        samples=1000, positive_rate=0.16, log_loss=0.36 + 0.01 * math.sin(step),
        log_loss_base=0.44, skill=1 - (0.36 + 0.01 * math.sin(step)) / 0.44, brier=0.11,
        brier_base=0.134, auc=0.81, auc_base=0.52, accuracy=0.87, accuracy_base=0.84,
        calibration=bins,
    )  # fmt: skip


def product_state(
    product: str = "BTC-USD",
    *,
    now: float,
    step: int = 0,
    candles: int = 50,
    trades: int = 1000,
    ready: bool = True,
    base: float = 50_000.0,
) -> ProductState:
    """A product's state at tick `step`: the mid wanders, so every step shows new numbers."""
    mid = base + 25 * math.sin(step / 7) + step * 0.01
    spread = 0.01 + (step % 5) * 0.01
    now_us = int(now * 1e6)
    candle_us = 1_000_000
    first = now_us - candles * candle_us
    bars = []
    for i in range(candles):
        o = base + 20 * math.sin((step + i) / 5)
        c = base + 20 * math.sin((step + i + 1) / 5)
        bars.append(Candle(first + i * candle_us, o, max(o, c) + 3, min(o, c) - 3, c))
    tape = tuple(
        TradeView(
            first + i * (candles * candle_us) // max(trades, 1),
            base + 20 * math.sin(i / 40),
            0.001 * (1 + i % 9),
            "buy" if i % 3 else "sell",
        )
        for i in range(trades)
    )
    features = {name: round(math.sin(step + i) * (i + 1), 4) for i, name in enumerate(FEATURES)}
    features["spread_bps"] = spread / mid * 1e4
    features["depth"] = 12.5 + 3 * math.sin(step / 3)
    model = ModelState(
        ready=ready,
        class_counts=(100 + step, 100 + step // 2) if ready else (min(step, 100), step // 3),
        warmup_target=100,
        accuracy_recent=0.55 + 0.1 * math.sin(step / 3) if ready else None,
        weights=MappingProxyType({n: math.cos(i + step / 10) for i, n in enumerate(FEATURES)})
        if ready
        else MappingProxyType({}),
        scores=model_scores(step) if ready else None,
    )
    return ProductState(
        product=product,
        updated_at=now,
        time_us=now_us,
        best_bid=mid - spread / 2,
        best_ask=mid + spread / 2,
        mid=mid,
        spread=spread,
        features=MappingProxyType(features),
        probability=0.5 + 0.4 * math.sin(step / 4) if ready else None,
        model=model,
        candles=tuple(bars),
        trades=tape,
    )
