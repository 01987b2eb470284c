"""The health page, built only from the app's own metrics (no Prometheus or Grafana needed).

`derive` turns each short window of scrapes into chart points (rates, quantiles, means);
`render_health` draws those points and a few longer-window summary cards.

Completeness per table is rows committed in the window plus the change in rows pending (still
buffered, awaiting a retry, or spilled awaiting recovery), over rows produced: exactly 100% when
nothing is lost, at every scrape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dash import Dash, Input, Output, dcc, html
from qw_metrics import counted, timed

from quotewatch.dashboard.sampler import MetricsSampler, Point
from quotewatch.dashboard.series import Scrape, Window
from quotewatch.dashboard.widgets import (
    PALETTE,
    Figure,
    figure,
    fmt_number,
    fmt_seconds,
    graph,
    line,
    stat_card,
)
from quotewatch.metrics import (
    DASHBOARD_CALLBACK_DURATION,
    DASHBOARD_CALLBACKS,
    EVENT_LOOP_LAG,
    FLUSH_DURATION,
    FRAME_LOG_GAUGES,
    MESSAGE_LATENCY,
    MESSAGES_MISSED,
    MESSAGES_RECEIVED,
    ML_PREDICT,
    ML_TRAIN,
    REMOTE_WRITE_LAST_SUCCESS,
    REMOTE_WRITE_QUEUE,
    RINGS,
    ROWS_EXPECTED,
    ROWS_PENDING,
    ROWS_WRITTEN,
    SEQUENCE_GAPS,
    STAGE_DURATION,
    STATE_AGE,
    WAL_FRAMES_UNLOGGED,
    sample_name,
)

SUMMARY_WINDOW = 60.0  # seconds behind the summary cards
QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))

MESSAGES = sample_name(MESSAGES_RECEIVED)
GAPS = sample_name(SEQUENCE_GAPS)
MISSED = sample_name(MESSAGES_MISSED)
WRITTEN = sample_name(ROWS_WRITTEN)
EXPECTED = ROWS_EXPECTED
PENDING = ROWS_PENDING
LATENCY = sample_name(MESSAGE_LATENCY)
STAGES = sample_name(STAGE_DURATION)
FLUSH = sample_name(FLUSH_DURATION)
PREDICT = sample_name(ML_PREDICT)
TRAIN = sample_name(ML_TRAIN)
LOOP_LAG = sample_name(EVENT_LOOP_LAG)
UPDATE_AGE = sample_name(STATE_AGE)
RENDER = sample_name(DASHBOARD_CALLBACK_DURATION)
TRADE_SOURCES = frozenset({"trade_id", "heartbeat"})
WAL_SEGMENT_COUNT = FRAME_LOG_GAUGES.SEGMENTS
WAL_SIZE = FRAME_LOG_GAUGES.SIZE
WAL_BOUND = FRAME_LOG_GAUGES.AT_BOUND
WAL_UNLOGGED = sample_name(WAL_FRAMES_UNLOGGED)


@dataclass(frozen=True, slots=True)
class Chart:
    """One time-series chart: points keyed `<key>/<trace>` become its traces."""

    key: str
    title: str
    y_title: str
    stacked: bool = False

    @property
    def graph_id(self) -> str:
        """The id of this chart's `dcc.Graph`."""
        return f"health-{self.key.replace('_', '-')}-chart"


CHARTS: tuple[Chart, ...] = (
    Chart("msg_rate", "Message rate by type", "msg/s"),
    Chart("write_rate", "Iceberg write rate by table", "rows/s"),
    Chart("latency", "Pipeline latency (receive → snapshot)", "ms"),
    Chart("stages", "Stage breakdown (mean time per call)", "ms", stacked=True),
    Chart("flush", "Flush latency p99 by table", "ms"),
    Chart("ml", "ML predict and train time", "ms"),
    Chart("loop_lag", "Event-loop lag", "ms"),
    Chart("gaps", "Gaps detected by source (per window)", "gaps"),
    Chart("dashboard", "Dashboard staleness and render time", "ms"),
    Chart("remote_write", "Remote-write queue", "snapshots"),
)
# Charts whose values are seconds and are drawn in milliseconds.
MILLISECONDS = frozenset({"latency", "stages", "flush", "ml", "loop_lag", "dashboard"})

CARDS: tuple[tuple[str, str], ...] = (
    ("health-msg-rate", "Message rate"),
    ("health-completeness", "Completeness (60 s)"),
    ("health-seq-gaps", "Sequence gaps"),
    ("health-trade-gaps", "Trade-id gaps"),
    ("health-latency", "Pipeline latency p99"),
    ("health-loop-lag", "Event-loop lag p99"),
    ("health-staleness", "Dashboard staleness"),
    ("health-remote-write", "Remote write"),
    ("health-frame-log", "Frame log"),
)


def derive(window: Window) -> dict[str, float | None]:
    """The chart values for one window (rates per second, quantiles and means in seconds)."""
    out: dict[str, float | None] = {}
    for kind, rate in window.rate(MESSAGES, by="type").items():
        out[f"msg_rate/{kind}"] = rate
    for table, rate in window.rate(WRITTEN, by="table").items():
        out[f"write_rate/{table}"] = rate
    for q, name in QUANTILES:
        out[f"latency/{name}"] = window.quantile(q, LATENCY).get("")
    for stage, mean in window.mean(STAGES, by="stage").items():
        out[f"stages/{stage}"] = mean
    for table, value in window.quantile(0.99, FLUSH, by="table").items():
        out[f"flush/{table}"] = value
    for q, name in (QUANTILES[0], QUANTILES[2]):
        out[f"ml/predict {name}"] = window.quantile(q, PREDICT).get("")
        out[f"ml/train {name}"] = window.quantile(q, TRAIN).get("")
        out[f"loop_lag/{name}"] = window.quantile(q, LOOP_LAG).get("")
        out[f"dashboard/render {name}"] = window.quantile(q, RENDER).get("")
    for source, count in window.increase(GAPS, by="source").items():
        out[f"gaps/{source}"] = count
    age = window.last.total(UPDATE_AGE)
    out["dashboard/staleness"] = age
    queue = window.last.total(REMOTE_WRITE_QUEUE)
    if queue is not None:
        out["remote_write/snapshots queued"] = queue
    return out


def completeness(window: Window) -> dict[str, float]:
    """Percent of the rows produced in `window` that were committed or are still pending, per
    table with rows produced."""
    written = window.increase(WRITTEN, by="table")
    expected = window.increase(EXPECTED, by="table")
    before = _by_table(window.first, PENDING)
    after = _by_table(window.last, PENDING)
    return {
        table: 100 * (written.get(table, 0.0) + after.get(table, 0.0) - before.get(table, 0.0)) / e
        for table, e in expected.items()
        if e > 0
    }


def _by_table(scrape: Scrape, name: str) -> dict[str, float]:
    return {dict(labels).get("table", ""): value for labels, value in scrape.select(name).items()}


@dataclass(frozen=True, slots=True)
class HealthView:
    """Everything the health callback outputs: card values and captions, then figures."""

    values: tuple[Any, ...]


def outputs() -> list[tuple[str, str]]:
    """(component id, property) of every health output, in `HealthView.values` order."""
    cards = [(f"{card}-{part}", "children") for card, _ in CARDS for part in ("value", "caption")]
    figures = [(c.graph_id, "figure") for c in CHARTS]
    return [*cards, ("health-completeness-chart", "figure"), ("health-buffers-chart", "figure"),
            *figures, ("health-updated", "children")]  # fmt: skip


def layout(interval_ms: int) -> html.Div:
    """The health page's components (filled by the callback `register` adds)."""
    graphs = [graph(c.graph_id, c.title, height=220) for c in CHARTS]
    return html.Div(
        id="health-page",
        children=[
            dcc.Interval(id="health-interval", interval=interval_ms),
            html.Div(
                className="qw-toolbar",
                children=[
                    html.Span("Collecting metrics…", id="health-updated", className="qw-muted")
                ],
            ),
            html.Div(className="qw-row", children=[stat_card(c, t) for c, t in CARDS]),
            html.Div(
                className="qw-grid",
                children=[
                    graph("health-completeness-chart", "Completeness by table (60 s)", height=220),
                    graph("health-buffers-chart", "Buffers: queue use, ring fill", height=220),
                    *graphs,
                ],
            ),
        ],
    )


@counted(DASHBOARD_CALLBACKS)
@timed(DASHBOARD_CALLBACK_DURATION)
def render_health(
    points: Sequence[Point], summary: Window | None, now: float, rate_window: float
) -> HealthView:
    """Render the health page from derived `points` and a longer `summary` window."""
    latest = summary.last if summary else None
    values: list[Any] = []
    for card_value in _cards(summary, now):
        values.extend(card_value)
    values.append(_completeness_figure(summary))
    values.append(_buffers_figure(latest))
    trained = bool(latest and latest.total(f"{TRAIN}_count"))
    values.extend(_chart_figures(points, trained=trained))
    if summary is None:
        values.append("Collecting metrics… (the first numbers need two scrapes)")
    else:
        stamp = time.strftime("%H:%M:%S", time.gmtime(summary.last.time))
        values.append(
            f"Metrics scraped {stamp} UTC · charts: {len(points)} points, rates and quantiles "
            f"over {rate_window:g} s · cards: last {summary.seconds:.0f} s"
        )
    return HealthView(tuple(values))


def _cards(window: Window | None, now: float) -> list[tuple[str, str]]:
    if window is None:
        return [("—", "")] * len(CARDS)
    last = window.last
    rates = window.rate(MESSAGES, by="type")
    busiest = sorted(rates.items(), key=lambda kv: -kv[1])[:3]
    by_type = ", ".join(f"{k} {v:.1f}/s" for k, v in busiest)
    cards = [(f"{sum(rates.values()):,.1f}/s", by_type or "no messages")]

    shares = completeness(window)
    if shares:
        worst = min(shares, key=lambda t: shares[t])
        cards.append((f"{shares[worst]:.1f}%", f"lowest: {worst}; {len(shares)} tables"))
    else:
        cards.append(("—", "no rows expected in the window"))

    gaps = last.select(GAPS)
    missed = last.select(MISSED)
    for trade in (False, True):
        count = sum(v for k, v in gaps.items() if (_source(k) in TRADE_SOURCES) == trade)
        lost = sum(v for k, v in missed.items() if (_source(k) in TRADE_SOURCES) == trade)
        cards.append((f"{count:,.0f}", f"{lost:,.0f} ids missed since start"))

    latency = {name: window.quantile(q, LATENCY).get("") for q, name in QUANTILES}
    cards.append(
        (
            fmt_seconds(latency["p99"]),
            f"p50 {fmt_seconds(latency['p50'])} · p95 {fmt_seconds(latency['p95'])}",
        )
    )
    lag = {name: window.quantile(q, LOOP_LAG).get("") for q, name in QUANTILES}
    cards.append((fmt_seconds(lag["p99"]), f"p50 {fmt_seconds(lag['p50'])}"))

    age = last.total(UPDATE_AGE)
    render = window.quantile(0.99, RENDER).get("")
    cards.append(
        (
            "—" if age is None else f"{age:.1f} s",
            f"render p99 {fmt_seconds(render)}",
        )
    )
    cards.append(_remote_write(last, now))
    cards.append(_frame_log(last))
    return cards


def _source(labels: tuple[tuple[str, str], ...]) -> str:
    return dict(labels).get("source", "")


def _remote_write(last: Scrape, now: float) -> tuple[str, str]:
    success = last.total(REMOTE_WRITE_LAST_SUCCESS)
    queue = last.total(REMOTE_WRITE_QUEUE)
    if success is None and queue is None:
        return "off", "no remote-write pusher in this process"
    caption = f"queue {fmt_number(queue, 0)}"
    if not success:
        return "never", caption
    return f"{max(0.0, now - success):.0f} s ago", f"last success · {caption}"


def _frame_log(last: Scrape) -> tuple[str, str]:
    segments = last.total(WAL_SEGMENT_COUNT)
    if segments is None:
        return "off", "no frame log in this process"
    unlogged = last.total(WAL_UNLOGGED) or 0.0
    if last.total(WAL_BOUND):
        return "AT BOUND", f"{unlogged:,.0f} frames not logged · raise --wal-max-bytes"
    plural = "" if segments == 1 else "s"
    caption = f"{segments:,.0f} segment{plural}, {(last.total(WAL_SIZE) or 0) / 1e6:,.1f} MB"
    if unlogged:
        caption += f" · {unlogged:,.0f} frames were not logged (at bound)"
    return "logging", caption


def _completeness_figure(window: Window | None) -> Figure:
    if window is None:
        return figure([], x_date=False, height=220)
    by_table = completeness(window)
    tables = sorted(by_table)
    if not tables:
        return figure([], x_date=False, height=220, empty_text="no rows expected yet")
    shares = [by_table[t] for t in tables]
    bars = {
        "type": "bar",
        "x": tables,
        "y": shares,
        "text": [f"{s:.1f}%" for s in shares],
        "textposition": "auto",
        "marker": {"color": [PALETTE[3] if s >= 99 else PALETTE[1] for s in shares]},
    }
    fig = figure([bars], x_date=False, height=220, y_title="%", showlegend=False)
    fig["layout"]["yaxis"]["range"] = [0, max(105.0, *shares)]
    return fig


def _buffers_figure(last: Scrape | None) -> Figure:
    if last is None:
        return figure([], x_date=False, height=220)
    names: list[str] = []
    shares: list[float] = []
    colors: list[str] = []
    for sample in sorted(n for n in last.names() if n.endswith("_buffer_size")):
        prefix = sample.removesuffix("_buffer_size")
        capacity = last.select(f"{prefix}_buffer_capacity")
        ring = prefix in RINGS
        for labels, size in last.select(sample).items():
            cap = capacity.get(labels)
            if cap:
                suffix = ",".join(v for _, v in labels)
                share = 100 * size / cap
                # A ring buffer is meant to be full: its fill is never a warning.
                parts = (prefix, suffix, "(ring)" if ring else "")
                names.append(" ".join(part for part in parts if part))
                shares.append(share)
                colors.append(PALETTE[2] if ring else PALETTE[4] if share >= 90 else PALETTE[0])
    if not names:
        return figure([], x_date=False, height=220, empty_text="no tracked buffers")
    bars = {
        "type": "bar",
        "orientation": "h",
        "x": shares,
        "y": names,
        "text": [f"{s:.0f}%" for s in shares],
        "textposition": "outside",
        "cliponaxis": False,
        "marker": {"color": colors},
    }
    fig = figure([bars], x_date=False, height=220, showlegend=False)
    fig["layout"]["xaxis"]["range"] = [0, 100]
    fig["layout"]["margin"]["l"] = 110
    return fig


def _empty_text(chart: Chart, points: Sequence[Point], *, pushing: bool, trained: bool) -> str:
    """What an empty chart says: why it is empty, where that is known."""
    if points and chart.key == "remote_write" and not pushing:
        return "remote write is off (no push URL)"
    if points and chart.key == "ml" and not trained:
        return "no training batch yet: model warming up"
    return "no data yet"


def _chart_figures(points: Sequence[Point], *, trained: bool) -> list[Figure]:
    """Every time-series chart, from one pass over the points; `trained` says whether the
    model has trained yet (predictions start only after its warm-up)."""
    series: dict[str, dict[str, tuple[list[float], list[float | None]]]] = {
        chart.key: {} for chart in CHARTS
    }
    for point in points:
        x = point.time * 1000
        for key, value in point.values.items():
            chart_key, _, name = key.partition("/")
            traces = series.get(chart_key)
            if traces is None:
                continue
            xs, ys = traces.setdefault(name, ([], []))
            xs.append(x)
            ys.append(value)
    # The pusher's series exist only when a push URL is set.
    pushing = any(p.values.get("remote_write/snapshots queued") is not None for p in points)
    figures = []
    for chart in CHARTS:
        scale = 1000.0 if chart.key in MILLISECONDS else 1.0
        data = []
        for i, (name, (xs, ys)) in enumerate(sorted(series[chart.key].items())):
            if all(y is None for y in ys):
                continue
            scaled = [None if y is None else y * scale for y in ys] if scale != 1.0 else ys
            trace = line(name, xs, scaled, PALETTE[i % len(PALETTE)])
            if chart.stacked:
                trace["stackgroup"] = "one"
            data.append(trace)
        empty = _empty_text(chart, points, pushing=pushing, trained=trained)
        figures.append(figure(data, height=220, y_title=chart.y_title, empty_text=empty))
    return figures


class HealthPage:
    """Renders the health page at most once per new scrape, however many browsers poll it."""

    def __init__(
        self, sampler: MetricsSampler, rate_window: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._sampler = sampler
        self._rate_window = rate_window
        self._clock = clock
        self._cached: tuple[float | None, HealthView] | None = None

    def view(self) -> HealthView:
        """The current view, re-rendered only when the sampler took a new scrape."""
        latest = self._sampler.history.latest()
        stamp = latest.time if latest else None
        cached = self._cached
        if cached is not None and cached[0] == stamp:
            return cached[1]
        view = render_health(
            self._sampler.points(),
            self._sampler.history.window(SUMMARY_WINDOW),
            self._clock(),
            self._rate_window,
        )
        self._cached = (stamp, view)
        return view


def register(app: Dash, page: HealthPage) -> None:
    """Add the health page's callback to `app`."""

    @app.callback(
        [Output(component, prop) for component, prop in outputs()],
        Input("health-interval", "n_intervals"),
    )
    def update_health(_ticks: int | None) -> Any:
        return list(page.view().values)
