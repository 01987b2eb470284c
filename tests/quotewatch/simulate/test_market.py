"""The market model: deterministic, realistic, with the counters the real feed has."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quotewatch.simulate.market import (
    US,
    BookChange,
    Bursts,
    Heartbeat,
    Market,
    Match,
    Tick,
    UnknownProductError,
    trimmed,
)

START = 1_780_000_000_123_456
PRODUCTS = ("BTC-USD", "ETH-USD", "DOGE-USD")


def _market(**kw: object) -> Market:
    options: dict[object, object] = {"seed": 7, "start_us": START, "depth": 300}
    options.update(kw)
    return Market(PRODUCTS, **options)  # type: ignore[arg-type]


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(1, 2 * US), min_size=1, max_size=20))
def test_events_do_not_depend_on_how_the_clock_is_advanced(steps: list[int]) -> None:
    end = START + 6 * US
    whole = _market().advance(end)
    chunked, t, market = [], START, _market()
    for step in steps:
        t = min(end, t + step)
        chunked.extend(market.advance(t))
    chunked.extend(market.advance(end))
    assert chunked == whole
    assert len(whole) > 500


def test_other_seeds_give_other_markets() -> None:
    assert _market(seed=1).advance(START + US) != _market(seed=2).advance(START + US)


def test_events_are_in_time_order_and_ticks_come_every_50_ms() -> None:
    events = _market().advance(START + 5 * US)
    times = [e.time_us for e in events]
    assert times == sorted(times)
    ticks = [e.time_us for e in events if isinstance(e, Tick)]
    assert all(t % 50_000 == 0 for t in ticks)
    assert [b - a for a, b in itertools.pairwise(ticks)] == [50_000] * (len(ticks) - 1)


def test_trade_ids_are_contiguous_while_match_sequences_jump() -> None:
    events = _market().advance(START + 60 * US)
    for product in PRODUCTS:
        matches = [e for e in events if isinstance(e, Match) and e.product == product]
        assert len(matches) > 30
        ids = [m.trade_id for m in matches]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        steps = [b.sequence - a.sequence for a, b in itertools.pairwise(matches)]
        assert min(steps) >= 1
        assert sum(s > 1 for s in steps) == len(steps)  # a filled maker adds a `done` at least
        assert max(steps) > 20  # order events between trades the client never sees


def test_heartbeats_carry_the_counters_once_a_second_per_product() -> None:
    events = _market().advance(START + 10 * US)
    last_trade: dict[str, int] = {}
    last_sequence: dict[str, int] = {}
    beats: Counter[str] = Counter()
    for event in events:
        if isinstance(event, Match):
            last_trade[event.product] = event.trade_id
            last_sequence[event.product] = event.sequence
        elif isinstance(event, Heartbeat):
            beats[event.product] += 1
            assert event.time_us % US == 0
            if event.product in last_trade:
                assert event.last_trade_id == last_trade[event.product]
                assert event.sequence >= last_sequence[event.product]
    assert beats == dict.fromkeys(PRODUCTS, 10)


def test_rates_are_realistic_per_product() -> None:
    events = _market().advance(START + 60 * US)
    for product in PRODUCTS:
        changes = sum(
            len(e.changes) for e in events if isinstance(e, BookChange) and e.product == product
        )
        trades = sum(1 for e in events if isinstance(e, Match) and e.product == product)
        assert 15 < changes / 60 < 80, product
        assert 0.5 < trades / 60 < 15, product


def test_the_book_stays_sane_and_near_its_depth() -> None:
    market = _market()
    for second in range(1, 61):
        market.advance(START + second * US)
        for pm in market.products.values():
            bids, asks = pm.book()
            assert bids[0][0] < asks[0][0]
            assert all(q > 0 for _, q in bids + asks)
            assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
            assert 100 < len(bids) < 600
            assert 100 < len(asks) < 600


def _mids_every_50_ms(product: str, seed: int, seconds: int) -> list[float]:
    market = Market([product], seed=seed, start_us=START)
    pm = market.products[product]
    mids = []
    for k in range(1, seconds * 20 + 1):
        market.advance(START + k * 50_000)
        mids.append((pm.bids.nth_best(0) + pm.asks.nth_best(0)) / 2)
    return mids


@pytest.mark.parametrize("seed", [1, 7])
def test_the_mid_moves_as_much_as_btc_usd_in_half_a_second(seed: int) -> None:
    # On the real feed the mid moves more than 0.01% (the labeler's default threshold) in a
    # good share of 500 ms windows; the model needs both labels to leave warm-up.
    mids = _mids_every_50_ms("BTC-USD", seed, seconds=600)
    moved = [abs(b - a) / a > 0.0001 for a, b in zip(mids, mids[10:], strict=False)]
    assert 0.05 < sum(moved) / len(moved) < 0.20


def test_the_book_stays_two_sided_and_deep_for_half_an_hour() -> None:
    market = Market(("BTC-USD", "ADA-USD"), seed=1, start_us=START)
    for second in range(1, 30 * 60 + 1):
        market.advance(START + second * US)
        for pm in market.products.values():
            assert min(len(pm.bids), len(pm.asks)) > 50, (pm.spec.product, second)
            assert pm.bids.nth_best(0) < pm.asks.nth_best(0)


def test_prices_are_sensible() -> None:
    market = _market()
    mids = {}
    for product, pm in market.products.items():
        bids, _asks = pm.book()
        mids[product] = float(pm.spec.price_str(bids[0][0]))
    assert 60_000 < mids["BTC-USD"] < 70_000
    assert 2_800 < mids["ETH-USD"] < 3_200
    assert 0.1 < mids["DOGE-USD"] < 0.2


def test_bursts_multiply_the_rate_during_bursts_only() -> None:
    bursts = Bursts(factor=10, every_s=10, duration_s=2)
    events = _market(bursts=bursts).advance(START + 40 * US)
    inside = outside = 0
    for event in events:
        if isinstance(event, BookChange):
            if (event.time_us - START) % (10 * US) < 2 * US:
                inside += 1
            else:
                outside += 1
    # 8 burst seconds against 32 normal ones
    assert 5 < (inside / 8) / (outside / 32) < 15


@given(st.integers(0, 100 * US))
def test_burst_factor_is_constant_until_the_next_change(elapsed: int) -> None:
    bursts = Bursts(factor=4, every_s=3, duration_s=0.5)
    change = bursts.next_change(elapsed)
    assert change is not None
    assert change > elapsed
    assert bursts.factor_at(change - 1) == bursts.factor_at(elapsed)
    assert bursts.factor_at(change) != bursts.factor_at(elapsed)


def test_unknown_products_and_bad_options_are_refused_clearly() -> None:
    with pytest.raises(UnknownProductError, match=r"'FOO-USD'.*BTC-USD"):
        Market(["FOO-USD"], seed=0, start_us=START)
    with pytest.raises(ValueError, match="depth"):
        Market(["BTC-USD"], seed=0, start_us=START, depth=0)
    with pytest.raises(ValueError, match="rate"):
        Market(["BTC-USD"], seed=0, start_us=START, rate=0)


def test_decimal_strings() -> None:
    spec = _market().products["BTC-USD"].spec
    assert spec.price_str(6_506_250) == "65062.50"
    assert spec.size_str(583_000) == "0.00583000"
    assert trimmed("65062.50") == "65062.5"
    assert trimmed("0.00000000") == "0"
    assert trimmed("100") == "100"


def test_btc_usd_quotes_a_few_ticks_wide_widening_in_bursts_with_real_sizes() -> None:
    market = Market(["BTC-USD"], seed=3, start_us=START)
    pm = market.products["BTC-USD"]
    spreads, top_sizes, turbulent = [], [], 0
    for k in range(1, 300 * 20 + 1):  # 300 s, sampled every 50 ms
        market.advance(START + k * 50_000)
        bid, ask = pm.bids.nth_best(0), pm.asks.nth_best(0)
        spreads.append(ask - bid)  # in ticks of 0.01
        top_sizes.append(pm.bids.levels[bid] / 1e8)  # BTC
        turbulent += pm.turbulent
    spreads.sort()
    assert spreads[len(spreads) // 2] <= 2  # mostly a tick or two, as on the real book
    assert spreads[int(len(spreads) * 0.95)] >= 10  # ... widening in the turbulent bursts
    assert 0.1 < turbulent / len(spreads) < 0.5
    top_sizes.sort()
    assert 0.001 < top_sizes[len(top_sizes) // 2] < 1.0  # hundredths to tenths of a BTC
    assert 500 < len(pm.bids) < 1500  # the default depth: about 1,000 levels a side


def test_the_touch_imbalance_leads_the_mid() -> None:
    market = Market(["BTC-USD"], seed=5, start_us=START)
    pm = market.products["BTC-USD"]
    imbalances, mids = [], []
    for k in range(1, 300 * 20 + 1):
        market.advance(START + k * 50_000)
        bid, ask = pm.bids.nth_best(0), pm.asks.nth_best(0)
        b, a = pm.bids.levels[bid], pm.asks.levels[ask]
        imbalances.append((b - a) / (b + a))
        mids.append((bid + ask) / 2)
    pairs = [
        (imb, later - now)
        for imb, now, later in zip(imbalances, mids, mids[10:], strict=False)
        if later != now
    ]
    agree = sum((imb > 0) == (move > 0) for imb, move in pairs if imb != 0)
    # The mid moves towards the heavier side of the touch more often than not.
    assert agree / len(pairs) > 0.53  # 0.552 with this seed; 0.5 would be no lead
