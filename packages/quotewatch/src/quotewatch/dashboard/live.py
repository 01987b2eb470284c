"""The live page: one product's quotes, microstructure, prediction, candles and model state.

One callback renders the whole page from the immutable snapshot the pipeline published
(`StateStore.current()`); it never touches the pipeline's objects or locks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update
from qw_metrics import counted, timed

from quotewatch.dashboard.widgets import (
    ACCENT,
    DOWN,
    MUTED,
    UP,
    Figure,
    figure,
    fmt_number,
    fmt_price,
    graph,
    stat_card,
)
from quotewatch.metrics import (
    DASHBOARD_CALLBACK_DURATION,
    DASHBOARD_CALLBACKS,
)
from quotewatch.state import FeedStatus, ModelState, ProductState, Snapshot, StateStore

# Microstructure cards: (feature name, card title, unit, decimals).
FEATURE_CARDS: tuple[tuple[str, str, str, int], ...] = (
    ("spread_bps", "Spread (relative)", "bps", 2),
    ("imbalance", "Book imbalance", "", 3),
    ("depth", "Depth (top 10)", "", 3),
    ("volatility", "Volatility (5 s)", "bps", 3),
    ("trade_imbalance", "Trade imbalance (5 s)", "", 4),
)

WEIGHTS_HEIGHT = 230
CALIBRATION_HEIGHT = 230
SHOWN = {"display": "block"}
HIDDEN = {"display": "none"}

# Output order of the live callback; `LiveView.outputs()` returns values in this order.
OUTPUTS: tuple[tuple[str, str], ...] = (
    ("product-select", "options"),
    ("product-select", "value"),
    ("product-select-wrap", "style"),
    ("last-update", "children"),
    ("staleness-warning", "children"),
    ("staleness-warning", "style"),
    ("prediction-value", "children"),
    ("prediction-caption", "children"),
    ("best-bid-value", "children"),
    ("mid-value", "children"),
    ("best-ask-value", "children"),
    ("spread-value", "children"),
    *((f"feature-{name}-value", "children") for name, *_ in FEATURE_CARDS),
    ("candles-chart", "figure"),
    ("weights-chart", "figure"),
    ("model-progress", "children"),
    ("model-accuracy-value", "children"),
    ("model-accuracy-caption", "children"),
    ("model-skill-value", "children"),
    ("model-skill-caption", "children"),
    ("model-auc-value", "children"),
    ("model-auc-caption", "children"),
    ("calibration-chart", "figure"),
)


def layout(interval_ms: int) -> html.Div:
    """The live page's components (filled by the callback `register` adds)."""
    return html.Div(
        id="live-page",
        children=[
            dcc.Interval(id="live-interval", interval=interval_ms),
            html.Div(
                className="qw-toolbar",
                children=[
                    html.Div(
                        id="product-select-wrap",
                        style=HIDDEN,
                        children=dcc.Dropdown(
                            id="product-select", options=[], clearable=False, searchable=False
                        ),
                    ),
                    html.Span("Waiting for data…", id="last-update", className="qw-muted"),
                    html.Div(id="staleness-warning", className="qw-warning", style=HIDDEN),
                ],
            ),
            html.Div(
                className="qw-row",
                children=[
                    html.Div(
                        className="qw-card qw-card-wide",
                        id="prediction",
                        children=[
                            html.Div("Price-move probability", className="qw-card-title"),
                            html.Div("—", id="prediction-value", className="qw-card-value big"),
                            html.Div("", id="prediction-caption", className="qw-card-caption"),
                        ],
                    ),
                    stat_card("best-bid", "Best bid"),
                    stat_card("mid", "Mid"),
                    stat_card("best-ask", "Best ask"),
                    stat_card("spread", "Spread (price)"),
                ],
            ),
            html.Div(
                className="qw-row",
                children=[
                    stat_card(f"feature-{name}", title, unit=unit)
                    for name, title, unit, _ in FEATURE_CARDS
                ],
            ),
            html.Div(
                className="qw-grid-live",
                children=[
                    graph("candles-chart", "Mid (OHLC, 1 s candles) and trades", height=470),
                    html.Div(
                        className="qw-panel",
                        children=[
                            html.Div("Model", className="qw-panel-title"),
                            html.Div(id="model-progress"),
                            html.Div(
                                className="qw-row",
                                children=[
                                    stat_card("model-skill", "Log-loss skill"),
                                    stat_card("model-auc", "ROC AUC"),
                                    stat_card("model-accuracy", "Accuracy"),
                                ],
                            ),
                            html.Div(
                                "Calibration: observed vs predicted (10 bins)",
                                className="qw-card-title qw-gap",
                            ),
                            dcc.Graph(
                                id="calibration-chart",
                                figure=figure([], x_date=False, height=CALIBRATION_HEIGHT),
                                config={"displayModeBar": False},
                                style={"height": f"{CALIBRATION_HEIGHT}px"},
                            ),
                            html.Div("Feature weights", className="qw-card-title qw-gap"),
                            dcc.Graph(
                                id="weights-chart",
                                figure=figure([], x_date=False, height=WEIGHTS_HEIGHT),
                                config={"displayModeBar": False},
                                style={"height": f"{WEIGHTS_HEIGHT}px"},
                            ),
                        ],
                    ),
                ],
            ),
        ],
    )


@dataclass(frozen=True, slots=True)
class LiveView:
    """Everything the live callback outputs, plus the age of the data it shows."""

    age: float | None
    values: tuple[Any, ...]


def choose_product(snapshot: Snapshot, selected: str | None) -> ProductState | None:
    """The selected product's state, else the first product alphabetically, else None."""
    products = snapshot.products
    if selected is not None and selected in products:
        return products[selected]
    return products[min(products)] if products else None


@counted(DASHBOARD_CALLBACKS)
@timed(DASHBOARD_CALLBACK_DURATION)
def render_live(
    snapshot: Snapshot,
    selected: str | None,
    options: Sequence[Any] | None,
    now: float,
    stale_after: float,
) -> LiveView:
    """Render the live page from `snapshot` as seen at wall-clock time `now`."""
    names = sorted(snapshot.products)
    product = choose_product(snapshot, selected)
    new_options = [{"label": n, "value": n} for n in names]
    options_out = no_update if list(options or []) == new_options else new_options
    # The dropdown starts empty: show which product the page picked.
    value_out = product.product if product and selected != product.product else no_update
    select_style = SHOWN if len(names) > 1 else HIDDEN

    feed = snapshot.feed
    updated = product.updated_at if product else feed.last_message_at
    age = None if updated is None else max(0.0, now - updated)
    last_update, warning = _freshness(updated, now, stale_after, feed)

    values: list[Any] = [
        options_out,
        value_out,
        select_style,
        last_update,
        warning or "",
        SHOWN if warning else HIDDEN,
    ]
    if product is None:
        values += ["—", "Waiting for the first order-book update"]
        values += ["—"] * 4
        values += ["—"] * len(FEATURE_CARDS)
        values += [
            figure([], height=470, empty_text="waiting for data"),
            figure([], x_date=False, height=WEIGHTS_HEIGHT),
        ]
        values += [_progress(ModelState()), *_score_cards(ModelState())]
        values.append(calibration_figure(ModelState()))
        return LiveView(age, tuple(values))

    values += _prediction(product)
    values += [
        fmt_price(product.best_bid),
        fmt_price(product.mid),
        fmt_price(product.best_ask),
        fmt_price(product.spread),
    ]
    values += [
        fmt_number(product.features.get(name), digits) for name, _, _, digits in FEATURE_CARDS
    ]
    model = product.model
    values += [
        candles_figure(product),
        weights_figure(model),
        _progress(model),
        *_score_cards(model),
        calibration_figure(model),
    ]
    return LiveView(age, tuple(values))


def _score_cards(model: ModelState) -> list[str]:
    """Accuracy, skill and AUC values and captions, each beside the base rate's."""
    scores = model.scores
    if scores is None:
        wait = "after warm-up" if not model.ready else "once predictions are labelled"
        return ["—", wait, "—", wait, "—", wait]
    window = f"last {scores.samples:,} labelled predictions"
    auc_base = "—" if scores.auc_base is None else f"{scores.auc_base:.3f}"
    return [
        f"{scores.accuracy:.1%}",
        f"always-{int(scores.positive_rate >= 0.5)}: {scores.accuracy_base:.1%}",
        f"{scores.skill:+.3f}",
        f"log loss {scores.log_loss:.3f} vs base rate {scores.log_loss_base:.3f}; {window}",
        "—" if scores.auc is None else f"{scores.auc:.3f}",
        f"base rate {auc_base}; 0.5 is chance",
    ]


def calibration_figure(model: ModelState) -> Figure:
    """Observed rate of moves against mean predicted probability, per bin, with the diagonal."""
    scores = model.scores
    if scores is None or not scores.calibration:
        return figure(
            [], x_date=False, height=CALIBRATION_HEIGHT, empty_text="no labelled predictions yet"
        )
    bins = scores.calibration
    diagonal = {
        "type": "scatter", "mode": "lines", "name": "perfect", "x": [0, 1], "y": [0, 1],
        "line": {"color": MUTED, "width": 1, "dash": "dot"}, "hoverinfo": "skip",
    }  # fmt: skip
    points = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": "model",
        "x": [b.predicted for b in bins],
        "y": [b.observed for b in bins],
        "text": [f"{b.low:.0%}–{b.high:.0%}: {b.samples:,} samples" for b in bins],
        "marker": {
            "color": ACCENT,
            "size": [6 + 14 * math.sqrt(b.samples / scores.samples) for b in bins],
        },
        "line": {"color": ACCENT, "width": 1.4},
    }
    fig = figure([diagonal, points], x_date=False, height=CALIBRATION_HEIGHT, showlegend=False)
    fig["layout"]["xaxis"].update(range=[0, 1], title={"text": "predicted"}, tickformat=".0%")
    fig["layout"]["yaxis"].update(range=[0, 1], title={"text": "observed"}, tickformat=".0%")
    return fig


def _freshness(
    updated: float | None, now: float, stale_after: float, feed: FeedStatus
) -> tuple[str, str | None]:
    """The last-update line and the staleness warning (None when fresh)."""
    status = f"feed {feed.source}: {'connected' if feed.connected else 'disconnected'}"
    if feed.detail:
        status += f" ({feed.detail})"
    if updated is None:
        return f"Waiting for data · {status}", "No market data received yet"
    age = max(0.0, now - updated)
    clock = time.strftime("%H:%M:%S", time.gmtime(updated))
    text = f"Updated {clock} UTC ({age:.1f} s ago) · {status} · {feed.messages:,} messages"
    if age > stale_after:
        return text, f"Stale: no update for {age:.0f} s (limit {stale_after:g} s)"
    return text, None


def _prediction(product: ProductState) -> list[Any]:
    model = product.model
    if model.ready and product.probability is not None:
        return [
            f"{product.probability:.1%}",
            "chance the mid moves beyond the threshold within the label horizon",
        ]
    target = 2 * model.warmup_target
    done = sum(min(c, model.warmup_target) for c in model.class_counts)
    return [f"Training {done / target:.0%}", f"warm-up: {done} of {target} labelled samples"]


def _progress(model: ModelState) -> html.Div:
    bars = []
    for label, count in zip(("no move (0)", "move (1)"), model.class_counts, strict=True):
        share = min(1.0, count / model.warmup_target) if model.warmup_target else 1.0
        bars.append(
            html.Div(
                className="qw-progress-row",
                children=[
                    html.Span(label, className="qw-progress-label"),
                    html.Div(
                        className="qw-progress",
                        children=html.Div(
                            className="qw-progress-fill", style={"width": f"{share:.0%}"}
                        ),
                    ),
                    html.Span(f"{count:,} / {model.warmup_target:,}", className="qw-muted"),
                ],
            )
        )
    state = "ready: predicting" if model.ready else "warming up: collecting labelled samples"
    return html.Div([html.Div(state, className="qw-card-caption"), *bars])


def candles_figure(product: ProductState) -> Figure:
    """Candlesticks of the mid, with the trades inside the candles' time range as dots."""
    candles = product.candles
    if not candles:
        return figure([], height=470, empty_text="no candles yet")
    data: list[dict[str, Any]] = [
        {
            "type": "candlestick",
            "name": "mid",
            "x": [c.start_us / 1000 for c in candles],
            "open": [c.open for c in candles],
            "high": [c.high for c in candles],
            "low": [c.low for c in candles],
            "close": [c.close for c in candles],
            "increasing": {"line": {"color": UP}},
            "decreasing": {"line": {"color": DOWN}},
        }
    ]
    since = candles[0].start_us
    for side, color in (("buy", UP), ("sell", DOWN)):
        trades = [t for t in product.trades if t.taker_side == side and t.time_us >= since]
        if trades:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"taker {side}",
                    "x": [t.time_us / 1000 for t in trades],
                    "y": [t.price for t in trades],
                    "marker": {"color": color, "size": 4, "opacity": 0.55},
                }
            )
    fig = figure(data, height=470)
    fig["layout"]["xaxis"]["rangeslider"] = {"visible": False}
    return fig


def weights_figure(model: ModelState) -> Figure:
    """Horizontal bars of the model's (scaled) feature weights."""
    weights = sorted(model.weights.items(), key=lambda kv: abs(kv[1]))
    if not weights:
        return figure(
            [], x_date=False, height=WEIGHTS_HEIGHT, empty_text="no weights before warm-up"
        )
    bars = {
        "type": "bar",
        "orientation": "h",
        "x": [w for _, w in weights],
        "y": [n for n, _ in weights],
        "marker": {"color": [ACCENT if w >= 0 else MUTED for _, w in weights]},
    }
    fig = figure([bars], x_date=False, height=WEIGHTS_HEIGHT, showlegend=False)
    fig["layout"]["margin"]["l"] = 120
    return fig


def register(
    app: Dash,
    store: StateStore,
    *,
    stale_after: float,
    clock: Callable[[], float] = time.time,
) -> None:
    """Add the live page's callback to `app`, reading `store` on every interval tick."""

    @app.callback(
        [Output(component, prop) for component, prop in OUTPUTS],
        Input("live-interval", "n_intervals"),
        Input("product-select", "value"),
        State("product-select", "options"),
    )
    def update_live(_ticks: int | None, selected: str | None, options: list[Any] | None) -> Any:
        view = render_live(store.current(), selected, options, clock(), stale_after)
        return list(view.values)
