"""Features and the trade buffer against hand-computed values and brute-force references."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quotewatch.pipeline.features import FeatureConfig, FeatureExtractor, FeatureVector, RollingStd
from quotewatch.pipeline.trades import TradeBuffer
from quotewatch.rows import FEATURE_NAMES
from quotewatch.state import TradeView

BIDS = [(99.0, 1.0), (98.0, 2.0), (97.0, 3.0)]
ASKS = [(101.0, 3.0), (102.0, 1.0), (103.0, 1.0)]


def compute(
    extractor: FeatureExtractor,
    time_us: int,
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
) -> tuple[float, ...]:
    return extractor.compute(
        time_us, bids[0][0], asks[0][0], [s for _, s in bids], [s for _, s in asks]
    )


def test_book_features_by_hand() -> None:
    trades = TradeBuffer()
    trades.add(TradeView(0, 100.0, 2.0, "buy"))
    trades.add(TradeView(1, 100.0, 0.5, "sell"))
    extractor = FeatureExtractor(trades, FeatureConfig(imbalance_levels=2, depth_levels=2))
    values = dict(zip(FEATURE_NAMES, compute(extractor, 10, BIDS, ASKS), strict=True))
    assert values["spread_bps"] == pytest.approx(2.0 / 100.0 * 1e4)
    assert values["imbalance"] == pytest.approx((1.0 - 3.0) / 4.0)
    wb, wa = 1.0 + 2.0 / 2, 3.0 + 1.0 / 2
    assert values["imbalance_weighted"] == pytest.approx((wb - wa) / (wb + wa))
    assert values["depth"] == pytest.approx(1.0 + 2.0 + 3.0 + 1.0)
    assert values["volatility"] == 0.0
    assert values["trade_imbalance"] == pytest.approx(1.5)


def test_volatility_is_std_of_mid_changes_in_bps_within_the_window() -> None:
    extractor = FeatureExtractor(TradeBuffer(), FeatureConfig(volatility_window_us=1000))
    mids = [100.0, 100.1, 100.0, 100.3]
    out = []
    for k, mid in enumerate(mids):
        out.append(compute(extractor, k * 400, [(mid - 0.5, 1.0)], [(mid + 0.5, 1.0)]))
    changes = [(b - a) / a * 1e4 for a, b in itertools.pairwise(mids)]
    # At t=1200 the window (200, 1200] holds the changes at 400, 800 and 1200.
    assert out[3][4] == pytest.approx(statistics.stdev(changes))
    # At t=800 it holds the changes at 400 and 800.
    assert out[2][4] == pytest.approx(statistics.stdev(changes[:2]))


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.tuples(st.integers(0, 50), st.floats(-50.0, 50.0, allow_nan=False)), max_size=80
    ),
    window=st.integers(1, 200),
)
def test_rolling_std_matches_statistics(values: list[tuple[int, float]], window: int) -> None:
    rolling = RollingStd(window)
    t = 0
    seen: list[tuple[int, float]] = []
    for gap, value in values:
        t += gap
        rolling.add(t, value)
        seen.append((t, value))
        inside = [v for ts, v in seen if ts > t - window]
        expected = statistics.variance(inside) if len(inside) >= 2 else 0.0
        # Compared as variances: a rounding residue of 1e-12 in a zero variance is already
        # 1e-6 after the square root.
        assert rolling.std(t) ** 2 == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    trades=st.lists(
        st.tuples(
            st.integers(0, 3_000_000),
            st.floats(0.0, 10.0, allow_nan=False),
            st.sampled_from(["buy", "sell"]),
        ),
        max_size=60,
    ),
    capacity=st.integers(1, 20),
)
def test_signed_volume_matches_brute_force(
    trades: list[tuple[int, float, str]], capacity: int
) -> None:
    buffer = TradeBuffer(capacity=capacity, window_us=5_000_000)
    t = 0
    kept: list[TradeView] = []
    for gap, size, side in trades:
        t += gap
        trade = TradeView(t, 100.0, size, side)
        buffer.add(trade)
        kept = [*kept, trade][-capacity:]
        expected = math.fsum(
            (x.size if x.taker_side == "buy" else -x.size)
            for x in kept
            if x.time_us > t - 5_000_000
        )
        assert buffer.signed_volume(t) == pytest.approx(expected, abs=1e-9)
        assert len(buffer) == len(kept)
        assert buffer.recent(5) == tuple(kept[-5:])


def test_trade_buffer_capacity_defaults_to_1000() -> None:
    buffer = TradeBuffer()
    for k in range(1500):
        buffer.add(TradeView(k, 1.0, 1.0, "buy"))
    assert buffer.capacity == 1000
    assert len(buffer) == 1000


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match="depth_levels"):
        FeatureConfig(depth_levels=0)


def test_feature_vector_is_a_read_only_mapping_in_name_order() -> None:
    values = tuple(float(i) for i in range(len(FEATURE_NAMES)))
    vector = FeatureVector(values)
    assert list(vector) == list(FEATURE_NAMES)
    assert dict(vector) == dict(zip(FEATURE_NAMES, values, strict=True))
    assert vector["depth"] == values[FEATURE_NAMES.index("depth")]
    assert vector.get("no such feature") is None
    with pytest.raises(TypeError):
        vector["depth"] = 1.0  # type: ignore[index]
    with pytest.raises(ValueError, match="expected 6 values"):
        FeatureVector((1.0, 2.0))
