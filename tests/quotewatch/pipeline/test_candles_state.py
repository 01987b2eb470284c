"""Candles from mid ticks, and the state store's snapshots."""

from __future__ import annotations

import dataclasses

import pytest
from quotewatch.pipeline.candles import CandleBuilder
from quotewatch.state import Candle, FeedStatus, ModelState, ProductState, StateStore


def test_candles_fold_ticks_by_interval_and_keep_the_last_n() -> None:
    builder = CandleBuilder(interval_us=1000, keep=2)
    for t, mid in [(0, 10.0), (300, 12.0), (600, 9.0), (999, 11.0), (1000, 11.5), (2500, 8.0)]:
        builder.add(t, mid)
    assert builder.candles() == (
        Candle(1000, 11.5, 11.5, 11.5, 11.5),
        Candle(2000, 8.0, 8.0, 8.0, 8.0),
    )
    builder = CandleBuilder(interval_us=1000)
    for t, mid in [(0, 10.0), (300, 12.0), (600, 9.0), (999, 11.0)]:
        builder.add(t, mid)
    assert builder.candles() == (Candle(0, 10.0, 12.0, 9.0, 11.0),)


def product(name: str, mid: float) -> ProductState:
    return ProductState(
        product=name, updated_at=1.0, time_us=1, best_bid=mid - 1, best_ask=mid + 1, mid=mid,
        spread=2.0, features={}, probability=None, model=ModelState(),
    )  # fmt: skip


def test_state_store_swaps_whole_snapshots_and_old_ones_never_change() -> None:
    store = StateStore()
    empty = store.current()
    assert dict(empty.products) == {}
    first = store.update_product(product("BTC-USD", 100.0))
    second = store.update_product(product("ETH-USD", 10.0), feed=FeedStatus(source="local"))
    assert store.current() is second
    assert set(first.products) == {"BTC-USD"}
    assert set(second.products) == {"BTC-USD", "ETH-USD"}
    assert second.feed.source == "local"
    third = store.update_feed(connected=True)
    assert third.feed == FeedStatus(source="local", connected=True)
    assert third.products is second.products
    with pytest.raises(TypeError):
        second.products["X"] = product("X", 1.0)  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        second.feed.connected = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        second.products["BTC-USD"].mid = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        second.created_at = 0.0  # type: ignore[misc]
