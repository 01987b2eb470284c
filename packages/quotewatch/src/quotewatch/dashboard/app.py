"""Builds the quotewatch Dash app: a live page and a health page over one StateStore.

The pages are routed with `dcc.Location`; `/metrics` and `/health` are plain Flask routes added
by `serving.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dash import Dash, Input, Output, dcc, html

from quotewatch.dashboard import health, live
from quotewatch.dashboard.health import HealthPage, derive
from quotewatch.dashboard.sampler import MetricsSampler
from quotewatch.dashboard.series import MetricSource
from quotewatch.probes import STALE_AFTER
from quotewatch.state import StateStore

LIVE_PATH = "/"
HEALTH_PATH = "/system-health"
ASSETS = Path(__file__).with_name("assets")


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    """How often pages refresh and when data counts as stale."""

    stale_after: float = STALE_AFTER  # seconds without an update before the warning shows
    live_interval_ms: int = 1000
    health_interval_ms: int = 2000
    sample_interval: float = 1.0  # seconds between scrapes of the metric registry
    history: int = 300  # scrapes kept for the health page's charts
    rate_window: float = 10.0  # seconds behind each point of the health charts

    def __post_init__(self) -> None:
        for name in ("stale_after", "live_interval_ms", "health_interval_ms", "sample_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"DashboardOptions.{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The Dash app and the metrics sampler feeding its health page."""

    app: Dash
    sampler: MetricsSampler


def build_app(
    store: StateStore,
    registry: MetricSource,
    options: DashboardOptions | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Dashboard:
    """Build the dashboard over `store`, with a health page drawn from `registry`.

    Start `dashboard.sampler` (or use `serving.serve`, which does) for the health charts.
    """
    options = options or DashboardOptions()
    sampler = MetricsSampler(
        registry,
        derive,
        interval=options.sample_interval,
        capacity=options.history,
        window=options.rate_window,
        clock=clock,
    )
    app = Dash(
        "quotewatch",
        title="quotewatch",
        update_title="",  # the tab title must not flicker on every interval tick
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=False,
    )
    live_layout = live.layout(options.live_interval_ms)
    health_layout = health.layout(options.health_interval_ms)
    app.layout = _shell()
    # Callbacks target components of pages not shown yet: validate against all of them.
    app.validation_layout = html.Div([_shell(), live_layout, health_layout])  # type: ignore[assignment]

    @app.callback(
        Output("page", "children"),
        Output("nav-live", "className"),
        Output("nav-health", "className"),
        Input("url", "pathname"),
    )
    def route(pathname: str | None) -> tuple[html.Div, str, str]:
        if pathname == HEALTH_PATH:
            return health_layout, "qw-nav", "qw-nav active"
        if pathname in (None, "", LIVE_PATH):
            return live_layout, "qw-nav active", "qw-nav"
        return _not_found(pathname), "qw-nav", "qw-nav"

    live.register(app, store, stale_after=options.stale_after, clock=clock)
    health.register(app, HealthPage(sampler, options.rate_window, clock))
    return Dashboard(app, sampler)


def _shell() -> html.Div:
    return html.Div(
        className="qw-app",
        children=[
            dcc.Location(id="url"),
            html.Header(
                className="qw-header",
                children=[
                    html.Div("quotewatch", className="qw-brand"),
                    html.Nav(
                        [
                            dcc.Link("Live", href=LIVE_PATH, id="nav-live", className="qw-nav"),
                            dcc.Link(
                                "Health", href=HEALTH_PATH, id="nav-health", className="qw-nav"
                            ),
                        ]
                    ),
                ],
            ),
            html.Main(id="page"),
        ],
    )


def _not_found(pathname: str) -> html.Div:
    return html.Div(
        className="qw-panel",
        children=[
            html.H2("Page not found"),
            html.P(f"No page at {pathname}. Try the live page or the health page."),
        ],
    )
