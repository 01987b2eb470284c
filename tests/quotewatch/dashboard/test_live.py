"""The live page's rendering, straight from snapshots (no server)."""

from __future__ import annotations

import time
from types import MappingProxyType
from typing import Any

from dash import no_update
from quotewatch.dashboard.live import OUTPUTS, LiveView, candles_figure, render_live
from quotewatch.metrics import DEFAULT_REGISTRY
from quotewatch.state import FeedStatus, ProductState, Snapshot, StateStore
from support.dashboard_state import product_state

NOW = 1_800_000_000.0


def snapshot(*states: ProductState, feed_at: float = NOW) -> Snapshot:
    return Snapshot(
        created_at=NOW,
        products=MappingProxyType({s.product: s for s in states}),
        feed=FeedStatus("local", True, 42, feed_at, ""),
    )


def outputs(view: LiveView) -> dict[str, Any]:
    return dict(zip((f"{c}.{p}" for c, p in OUTPUTS), view.values, strict=True))


def test_fresh_product_shows_quotes_probability_and_hides_the_warning() -> None:
    state = product_state(now=NOW - 1.0, step=3)
    out = outputs(render_live(snapshot(state), None, None, NOW, 5.0))
    assert out["best-bid-value.children"] == f"{state.best_bid:,.2f}"
    assert out["mid-value.children"] == f"{state.mid:,.2f}"
    assert out["best-ask-value.children"] == f"{state.best_ask:,.2f}"
    assert out["prediction-value.children"] == f"{state.probability:.1%}"
    assert out["staleness-warning.style"] == {"display": "none"}
    assert "1.0 s ago" in out["last-update.children"]
    assert out["feature-imbalance-value.children"] == f"{state.features['imbalance']:,.3f}"
    # One product: no selector, but it is chosen.
    assert out["product-select-wrap.style"] == {"display": "none"}
    assert out["product-select.value"] == "BTC-USD"


def test_stale_data_shows_the_warning_with_its_age() -> None:
    state = product_state(now=NOW - 7.4, step=1)
    view = render_live(snapshot(state), "BTC-USD", None, NOW, 5.0)
    out = outputs(view)
    assert view.age is not None
    assert abs(view.age - 7.4) < 1e-6
    assert out["staleness-warning.style"] == {"display": "block"}
    assert out["staleness-warning.children"] == "Stale: no update for 7 s (limit 5 s)"


def test_no_data_yet_waits_and_warns() -> None:
    empty = Snapshot(NOW, MappingProxyType({}), FeedStatus())
    view = render_live(empty, None, None, NOW, 5.0)
    out = outputs(view)
    assert view.age is None
    assert out["mid-value.children"] == "—"
    assert out["staleness-warning.children"] == "No market data received yet"
    assert out["staleness-warning.style"] == {"display": "block"}


def test_several_products_show_a_selector_and_render_the_selected_one() -> None:
    btc = product_state("BTC-USD", now=NOW, step=1, base=50_000.0)
    eth = product_state("ETH-USD", now=NOW, step=1, base=3_000.0)
    options = [{"label": "BTC-USD", "value": "BTC-USD"}, {"label": "ETH-USD", "value": "ETH-USD"}]
    out = outputs(render_live(snapshot(btc, eth), "ETH-USD", options, NOW, 5.0))
    assert out["product-select-wrap.style"] == {"display": "block"}
    assert out["product-select.options"] is no_update  # unchanged options are not resent
    assert out["product-select.value"] is no_update
    assert out["mid-value.children"] == f"{eth.mid:,.2f}"


def test_before_warm_up_the_page_shows_training_progress() -> None:
    state = product_state(now=NOW, step=60, ready=False)
    out = outputs(render_live(snapshot(state), None, None, NOW, 5.0))
    # class counts (60, 20) of 100 each: 80 of 200 samples.
    assert out["prediction-value.children"] == "Training 40%"
    assert out["prediction-caption.children"] == "warm-up: 80 of 200 labelled samples"
    assert out["model-accuracy-value.children"] == "—"
    assert out["weights-chart.figure"]["data"] == []


def test_candles_and_trades_become_plain_figure_dicts() -> None:
    state = product_state(now=NOW, step=2, candles=50, trades=1000)
    fig = candles_figure(state)
    candle, *trades = fig["data"]
    assert candle["type"] == "candlestick"
    assert len(candle["x"]) == 50
    assert candle["close"][-1] == state.candles[-1].close
    assert sum(len(t["x"]) for t in trades) == 1000
    assert {t["name"] for t in trades} == {"taker buy", "taker sell"}


def sample(name: str) -> float:
    return DEFAULT_REGISTRY.get_sample_value(name) or 0.0


def test_rendering_records_duration_and_count() -> None:
    calls = sample("dashboard_callbacks_total")
    timed = sample("dashboard_callback_duration_seconds_count")
    render_live(snapshot(product_state(now=NOW - 2.5)), None, None, NOW, 5.0)
    assert sample("dashboard_callbacks_total") == calls + 1
    assert sample("dashboard_callback_duration_seconds_count") == timed + 1


def test_staleness_is_the_stores_age_when_collected_page_open_or_not() -> None:
    store = StateStore()
    store.update_product(product_state(now=time.time() - 2.5))
    first = sample("dashboard_update_age_seconds")
    assert 2.5 <= first < 3.5
    time.sleep(0.2)  # no render, no publish: the age keeps rising
    assert sample("dashboard_update_age_seconds") >= first + 0.2
    store.update_product(product_state(now=time.time()))
    assert sample("dashboard_update_age_seconds") < 1.0


def test_ready_model_shows_skill_auc_and_accuracy_beside_the_base_rate_and_calibration() -> None:
    state = product_state(now=NOW, step=0)
    scores = state.model.scores
    assert scores is not None
    out = outputs(render_live(snapshot(state), None, None, NOW, 5.0))
    assert out["model-skill-value.children"] == f"{scores.skill:+.3f}"
    assert out["model-skill-caption.children"].startswith(
        "log loss 0.360 vs base rate 0.440; last 1,000 labelled predictions"
    )
    assert out["model-auc-value.children"] == "0.810"
    assert out["model-auc-caption.children"] == "base rate 0.520; 0.5 is chance"
    assert out["model-accuracy-value.children"] == "87.0%"
    assert out["model-accuracy-caption.children"] == "always-0: 84.0%"
    diagonal, points = out["calibration-chart.figure"]["data"]
    assert diagonal["x"] == [0, 1]
    assert points["x"] == [b.predicted for b in scores.calibration]
    assert points["y"] == [b.observed for b in scores.calibration]
    assert len(points["x"]) == 6


def test_before_warm_up_the_scores_wait() -> None:
    out = outputs(render_live(snapshot(product_state(now=NOW, ready=False)), None, None, NOW, 5.0))
    assert out["model-skill-value.children"] == "—"
    assert out["model-auc-caption.children"] == "after warm-up"
    assert out["calibration-chart.figure"]["data"] == []
