"""Small builders for Grafana dashboard JSON: PromQL selectors, targets, panels and a grid layout.

The dashboards are plain dicts in Grafana's JSON model (schemaVersion 39). Every panel and target
reads from the `${datasource}` template variable, so the same JSON works on any Prometheus data
source, Grafana Cloud's included. Every selector filters on `environment`, `job` and `instance`
(other applications push `process_*` series into the same environments), and on `product` where
the metric has one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from quotewatch.config import DEFAULT_JOB
from quotewatch.metrics import LAST_TRADE_ID, MESSAGES_RECEIVED, sample_name

SCHEMA_VERSION = 39
# Fixed uids: importing or pushing again replaces a dashboard, and the two link to each other.
PIPELINE_HEALTH_UID = "quotewatch-pipeline-health"
SYSTEM_PERFORMANCE_UID = "quotewatch-system-performance"
GRID_COLUMNS = 24
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}

# The variables every query filters on: every pushed series carries these labels.
ENVIRONMENT_MATCHER = 'environment=~"$environment"'
JOB_MATCHER = 'job=~"$job"'
INSTANCE_MATCHER = 'instance=~"$instance"'
PRODUCT_MATCHER = 'product=~"$product"'

Json = dict[str, Any]

# Series-name prefixes used in override regexes: nothing a regex would read specially.
_PLAIN = re.compile(r"[\w :/-]+")


def selector(metric: str, *, product: bool = False, matchers: Sequence[str] = ()) -> str:
    """`metric{environment=~"$environment", job=~"$job", instance=~"$instance", ...}`;
    `product` adds the product filter."""
    parts = [
        ENVIRONMENT_MATCHER,
        JOB_MATCHER,
        INSTANCE_MATCHER,
        *([PRODUCT_MATCHER] if product else []),
        *matchers,
    ]
    return f"{metric}{{{', '.join(parts)}}}"


def rate(metric: str, *, window: str = "$__rate_interval", product: bool = False) -> str:
    """`rate(metric{filters}[window])` for a counter (name with `_total`) or histogram series."""
    return f"rate({selector(metric, product=product)}[{window}])"


def increase(metric: str, *, window: str = "$__range", product: bool = False) -> str:
    """`increase(metric{filters}[window])` for a counter, by default over the dashboard's range."""
    return f"increase({selector(metric, product=product)}[{window}])"


def quantile(q: float, histogram: str, *, by: Sequence[str] = ()) -> str:
    """`histogram_quantile` of a prometheus_client histogram, grouped by `le` plus `by`."""
    grouping = ", ".join(("le", *by))
    return f"histogram_quantile({q}, sum by ({grouping}) ({rate(histogram + '_bucket')}))"


def mean(histogram: str, *, by: Sequence[str] = ()) -> str:
    """Mean observation per call over the rate window: rate of `_sum` over rate of `_count`."""
    grouping = f" by ({', '.join(by)}) " if by else ""
    total, count = rate(histogram + "_sum"), rate(histogram + "_count")
    return f"sum{grouping}({total}) / sum{grouping}({count})"


@dataclass(frozen=True)
class Query:
    """One PromQL target: range by default, `instant` for stats, `heatmap` for bucket series."""

    expr: str
    legend: str = ""
    instant: bool = False
    heatmap: bool = False

    def target(self, ref_id: str) -> Json:
        """The Grafana target JSON for this query."""
        target: Json = {
            "refId": ref_id,
            "datasource": dict(DATASOURCE),
            "editorMode": "code",
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "instant": self.instant,
        }
        if self.heatmap:
            target["format"] = "heatmap"
        return target


@dataclass(frozen=True)
class Panel:
    """A panel body without id and position, plus the size it takes in the grid."""

    body: Json
    width: int
    height: int = 8


def _targets(queries: Sequence[Query]) -> list[Json]:
    if not queries:
        raise ValueError("a panel needs at least one query")
    return [q.target(chr(ord("A") + i)) for i, q in enumerate(queries)]


def _thresholds(steps: Sequence[tuple[str, float | None]]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


_GREEN = (("green", None),)


def _panel(
    kind: str,
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    defaults: Json,
    options: Json,
) -> Json:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": dict(DATASOURCE),
        "targets": _targets(queries),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def _reduce(calc: str = "lastNotNull") -> Json:
    return {"calcs": [calc], "fields": "", "values": False}


def timeseries(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str,
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    bars: bool = False,
    right_axis: Mapping[str, str] | None = None,
) -> Panel:
    """A time series panel; `right_axis` maps a series-name prefix to its unit on the right."""
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 30 if stacked or bars else 10,
        "showPoints": "never",
        "spanNulls": False,
        "axisPlacement": "auto",
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
    }
    defaults: Json = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "custom": custom,
        "thresholds": _thresholds(_GREEN),
    }
    options: Json = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    body = _panel("timeseries", title, description, queries, defaults=defaults, options=options)
    for prefix, right_unit in (right_axis or {}).items():
        if not _PLAIN.fullmatch(prefix):
            raise ValueError(f"right-axis series prefix {prefix!r} must be plain text")
        body["fieldConfig"]["overrides"].append(
            {
                "matcher": {"id": "byRegexp", "options": f"^{prefix}.*"},
                "properties": [
                    {"id": "custom.axisPlacement", "value": "right"},
                    {"id": "unit", "value": right_unit},
                ],
            }
        )
    return Panel(body, width, height)


def dashed(panel: Panel, series_regex: str) -> Panel:
    """Draw the series whose name matches `series_regex` as dashed lines (e.g. expected values)."""
    panel.body["fieldConfig"]["overrides"].append(
        {
            "matcher": {"id": "byRegexp", "options": series_regex},
            "properties": [
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                {"id": "custom.fillOpacity", "value": 0},
            ],
        }
    )
    return panel


def stat(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str,
    width: int = 8,
    height: int = 8,
    thresholds: Sequence[tuple[str, float | None]] = _GREEN,
    states: Mapping[int, str] | None = None,
    no_value: str | None = None,
) -> Panel:
    """A stat panel showing each series' last value; `states` names values (a 0/1 gauge reads
    as words), `no_value` is the text shown when the query has no series."""
    defaults: Json = {
        "unit": unit,
        "decimals": 0,
        "color": {"mode": "thresholds"},
        "thresholds": _thresholds(thresholds),
    }
    if states:
        options_by_value = {
            str(value): {"text": text, "index": i}
            for i, (value, text) in enumerate(sorted(states.items()))
        }
        defaults["mappings"] = [{"type": "value", "options": options_by_value}]
    if no_value is not None:
        defaults["noValue"] = no_value
    options: Json = {
        "reduceOptions": _reduce(),
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "value_and_name",
    }
    return Panel(
        _panel("stat", title, description, queries, defaults=defaults, options=options),
        width,
        height,
    )


def gauge(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str,
    minimum: float,
    maximum: float,
    thresholds: Sequence[tuple[str, float | None]],
    width: int = 8,
    height: int = 8,
) -> Panel:
    """A gauge panel with one dial per series."""
    defaults: Json = {
        "unit": unit,
        "min": minimum,
        "max": maximum,
        "decimals": 2,
        "color": {"mode": "thresholds"},
        "thresholds": _thresholds(thresholds),
    }
    options: Json = {
        "reduceOptions": _reduce(),
        "orientation": "auto",
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
    }
    return Panel(
        _panel("gauge", title, description, queries, defaults=defaults, options=options),
        width,
        height,
    )


def bargauge(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str,
    width: int = 8,
    height: int = 8,
    maximum: float | None = None,
    thresholds: Sequence[tuple[str, float | None]] = _GREEN,
) -> Panel:
    """A horizontal bar gauge: one bar per series (or per bucket with heatmap-format queries)."""
    defaults: Json = {
        "unit": unit,
        "min": 0,
        "color": {"mode": "thresholds"},
        "thresholds": _thresholds(thresholds),
    }
    if maximum is not None:
        defaults["max"] = maximum
    options: Json = {
        "reduceOptions": _reduce(),
        "displayMode": "gradient",
        "orientation": "horizontal",
        "showUnfilled": True,
        "valueMode": "color",
        "namePlacement": "auto",
        "sizing": "auto",
    }
    return Panel(
        _panel("bargauge", title, description, queries, defaults=defaults, options=options),
        width,
        height,
    )


def heatmap(
    title: str, description: str, query: Query, *, unit: str, width: int = 12, height: int = 8
) -> Panel:
    """A heatmap of pre-bucketed histogram series (the query must use `heatmap` format)."""
    if not query.heatmap:
        raise ValueError(f"heatmap panel {title!r} needs a heatmap-format query")
    options: Json = {
        "calculate": False,
        "cellGap": 1,
        "color": {
            "mode": "scheme",
            "scheme": "Oranges",
            "scale": "exponential",
            "exponent": 0.5,
            "steps": 64,
            "fill": "dark-orange",
            "reverse": False,
        },
        "yAxis": {"axisPlacement": "left", "unit": unit, "reverse": False},
        "rowsFrame": {"layout": "auto"},
        "filterValues": {"le": 1e-9},
        "showValue": "never",
        "legend": {"show": True},
        "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
    }
    body = _panel("heatmap", title, description, [query], defaults={}, options=options)
    return Panel(body, width, height)


def datasource_variable() -> Json:
    """The `datasource` template variable: any Prometheus data source."""
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }


def label_variable(name: str, label: str, query: str) -> Json:
    """A multi-value query variable from `label_values(...)`, with All meaning any value."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": dict(DATASOURCE),
        "query": query,
        "definition": query,
        "current": {},
        "hide": 0,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 1,
    }


def job_variable(job: str) -> Json:
    """The `job` variable: one job at a time, `job` by default, offering only jobs that push
    quotewatch's own metrics (never "All": that would draw other applications' series)."""
    query = f'label_values({sample_name(MESSAGES_RECEIVED)}{{environment=~"$environment"}}, job)'
    variable = label_variable("job", "Job", query)
    variable.update(
        includeAll=False,
        multi=False,
        current={"selected": True, "text": job, "value": job},
    )
    del variable["allValue"]
    return variable


def filter_variables(*, job: str, product: bool) -> list[Json]:
    """The `environment`, `job` and `instance` variables every quotewatch dashboard filters
    on, and `product` for a dashboard whose metrics have one."""
    scope = 'environment=~"$environment", job=~"$job"'
    variables = [
        label_variable(
            "environment",
            "Environment",
            f"label_values({sample_name(MESSAGES_RECEIVED)}, environment)",
        ),
        job_variable(job),
        label_variable(
            "instance",
            "Instance",
            f"label_values({sample_name(MESSAGES_RECEIVED)}{{{scope}}}, instance)",
        ),
    ]
    if product:
        variables.append(
            label_variable(
                "product",
                "Product",
                f"label_values({sample_name(LAST_TRADE_ID)}{{{scope}}}, product)",
            )
        )
    return variables


@dataclass(frozen=True)
class Link:
    """A link in the dashboard's header: to another dashboard (by uid) or to a URL."""

    title: str
    tooltip: str
    uid: str | None = None
    url: str | None = None

    def json(self) -> Json:
        """Grafana's dashboard-link JSON; links to dashboards keep the time range and variables."""
        to_dashboard = self.uid is not None
        return {
            "title": self.title,
            "tooltip": self.tooltip,
            "type": "link",
            "url": f"/d/{self.uid}" if to_dashboard else self.url,
            "icon": "dashboard" if to_dashboard else "doc",
            "keepTime": to_dashboard,
            "includeVars": to_dashboard,
            "targetBlank": not to_dashboard,
            "asDropdown": False,
            "tags": [],
        }


def header_links(title: str, tooltip: str, uid: str, runbook_url: str) -> list[Link]:
    """A dashboard's header links: the other dashboard, then the runbook."""
    return [
        Link(title, tooltip, uid=uid),
        Link("Runbook", "How to read these panels, and what each alert means", url=runbook_url),
    ]


@dataclass
class _Grid:
    next_id: int = 1
    y: int = 0
    panels: list[Json] = field(default_factory=list)

    def add_row(self, row: Sequence[Panel]) -> None:
        if sum(p.width for p in row) > GRID_COLUMNS:
            titles = [p.body["title"] for p in row]
            raise ValueError(f"row {titles} is wider than {GRID_COLUMNS} columns")
        x = 0
        for panel in row:
            placed = {
                "id": self.next_id,
                "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": self.y},
                **panel.body,
            }
            self.panels.append(placed)
            self.next_id += 1
            x += panel.width
        self.y += max(p.height for p in row)


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    rows: Sequence[Sequence[Panel]],
    links: Sequence[Link] = (),
    job: str = DEFAULT_JOB,
) -> Json:
    """A complete, importable dashboard: panels laid out row by row, ids numbered from 1; the
    `product` variable only if a query uses it."""
    grid = _Grid()
    for row in rows:
        grid.add_row(row)
    uses_product = any(
        PRODUCT_MATCHER in target["expr"] for panel in grid.panels for target in panel["targets"]
    )
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["quotewatch"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "links": [link.json() for link in links],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [datasource_variable(), *filter_variables(job=job, product=uses_product)]
        },
        "panels": grid.panels,
    }
