"""Realistic, changing dashboard state for tests and benchmarks (no pipeline needed)."""

from __future__ import annotations

import math
from types import MappingProxyType

from quotewatch.rows import FEATURE_NAMES as FEATURES
from quotewatch.state import Candle, ModelState, ProductState, TradeView


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
