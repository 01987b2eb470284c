"""Building blocks shared by the dashboard pages: stat cards, figure dicts, number formats.

Figures are plain dicts (no plotly graph objects or express): building them costs almost
nothing, which keeps callbacks cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dash import dcc, html

# Colours shared with assets/style.css.
UP = "#26a69a"
DOWN = "#ef5350"
ACCENT = "#4fc3f7"
MUTED = "#8b98a5"
PALETTE = ("#4fc3f7", "#ffb74d", "#ba68c8", "#81c784", "#f06292", "#fff176", "#90a4ae")

Figure = dict[str, Any]


def stat_card(card_id: str, title: str, *, unit: str = "") -> html.Div:
    """A card with a title, a big value (`<card_id>-value`) and a caption (`<card_id>-caption`)."""
    return html.Div(
        className="qw-card",
        id=card_id,
        children=[
            html.Div(title, className="qw-card-title"),
            html.Div(
                className="qw-card-body",
                children=[
                    html.Span("—", id=f"{card_id}-value", className="qw-card-value"),
                    html.Span(unit, className="qw-card-unit"),
                ],
            ),
            html.Div("", id=f"{card_id}-caption", className="qw-card-caption"),
        ],
    )


def graph(graph_id: str, title: str, *, height: int = 280) -> html.Div:
    """A titled panel holding an empty `dcc.Graph` that a callback fills."""
    return html.Div(
        className="qw-panel",
        children=[
            html.Div(title, className="qw-panel-title"),
            dcc.Graph(
                id=graph_id,
                figure=figure([], height=height),
                config={"displayModeBar": False, "responsive": True},
                style={"height": f"{height}px"},
            ),
        ],
    )


def figure(
    data: Sequence[dict[str, Any]],
    *,
    height: int = 280,
    y_title: str = "",
    x_date: bool = True,
    empty_text: str = "no data yet",
    **layout: Any,
) -> Figure:
    """A dark, compact figure dict; shows `empty_text` when there are no traces."""
    base: dict[str, Any] = {
        "height": height,
        "margin": {"l": 52, "r": 12, "t": 8, "b": 32},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": "#c9d1d9", "size": 11},
        "legend": {
            "orientation": "h",
            "y": 1.02,
            "yanchor": "bottom",
            "x": 0,
            "font": {"size": 10},
        },
        "xaxis": {"gridcolor": "#243040", "type": "date" if x_date else "-", "zeroline": False},
        "yaxis": {"gridcolor": "#243040", "title": {"text": y_title}, "zeroline": False},
        "uirevision": "keep",  # keep zoom and legend choices across updates
    }
    if not data:
        base["annotations"] = [
            {
                "text": empty_text,
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"color": MUTED, "size": 13},
            }
        ]
        base["xaxis"] = {**base["xaxis"], "visible": False}
        base["yaxis"] = {**base["yaxis"], "visible": False}
    base.update(layout)
    return {"data": list(data), "layout": base}


def line(name: str, x: Sequence[float], y: Sequence[float | None], color: str) -> dict[str, Any]:
    """A line trace (x in epoch milliseconds)."""
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": list(x),
        "y": list(y),
        "line": {"color": color, "width": 1.6},
        "connectgaps": False,
    }


def fmt_price(value: float | None) -> str:
    """A price with as many decimals as its size needs."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    if abs(value) >= 1:
        return f"{value:,.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.2f}"
    return f"{value:.6g}"


def fmt_number(value: float | None, digits: int = 2) -> str:
    """A plain number with `digits` decimals, or a dash when unknown."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.{digits}f}"


def fmt_seconds(value: float | None) -> str:
    """A duration in the unit that reads best (µs, ms or s)."""
    if value is None or not math.isfinite(value):
        return "—"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"
