"""The "Data Pipeline Health" dashboard: is every message captured, and is every row stored?"""

from __future__ import annotations

from quotewatch.grafana.panels import (
    Json,
    Query,
    bargauge,
    dashboard,
    dashed,
    gauge,
    heatmap,
    increase,
    rate,
    selector,
    stat,
    timeseries,
)

UID = "quotewatch-pipeline-health"


def new_or_increase(metric: str, *, window: str, product: bool = False) -> str:
    """Increase of a labelled counter over `window`, counting series born inside the window.

    A labelled prometheus_client counter has no series until its first increment, so
    `increase()` alone misses that first increment, and for rare events such as gaps the first
    one is the one that matters. A series absent `window` ago counts in full instead.
    """
    now = selector(metric, product=product)
    counted = increase(metric, window=window, product=product)
    return f"({now} unless {now} offset {window}) or {counted}"


def completeness(window: str) -> str:
    """Rows committed / rows the pipeline produced, per table, in percent, over `window`."""
    written = increase("iceberg_rows_written_total", window=window)
    expected = increase("pipeline_rows_expected_total", window=window)
    return f"100 * sum by (table) ({written}) / sum by (table) ({expected})"


def build() -> Json:
    """The Data Pipeline Health dashboard JSON."""
    rows = [
        [
            timeseries(
                "Message rate",
                "Feed messages received per second by type; malformed messages (counted and "
                "skipped) by reason. Flat zero while the app is up means the feed is silent.",
                [
                    Query(
                        f"sum by (type) ({rate('coinbase_messages_received_total')})", "{{type}}"
                    ),
                    Query(
                        f"sum by (reason) ({rate('coinbase_messages_invalid_total')})",
                        "invalid: {{reason}}",
                    ),
                ],
                unit="suffix: msg/s",
            ),
            timeseries(
                "Write rate",
                "Rows committed to Iceberg per second, by table. Writes come in flushes, so "
                "this line is bursty; it should average out to the expected rows.",
                [Query(f"sum by (table) ({rate('iceberg_rows_written_total')})", "{{table}}")],
                unit="suffix: rows/s",
            ),
        ],
        [
            gauge(
                "Data completeness",
                "Rows committed / rows the pipeline produced for storage, per table, over the "
                "selected time range. Just under 100% is rows still buffered; a steady drop "
                "means rows are lost or stuck.",
                [Query(completeness("$__range"), "{{table}}", instant=True)],
                unit="percent",
                minimum=90,
                maximum=100,
                thresholds=[("red", None), ("orange", 99), ("green", 99.9)],
            ),
            stat(
                "Gaps detected",
                "Gaps (runs of missing ids) and the ids missing inside them over the selected "
                "range, by id source: trade_id per product, heartbeat last_trade_id, or the "
                "Advanced Trade connection's sequence_num.",
                [
                    Query(
                        "sum by (source) ("
                        + new_or_increase(
                            "coinbase_sequence_gaps_total", window="$__range", product=True
                        )
                        + ")",
                        "gaps: {{source}}",
                        instant=True,
                    ),
                    Query(
                        "sum by (source) ("
                        + new_or_increase(
                            "coinbase_messages_missed_total", window="$__range", product=True
                        )
                        + ")",
                        "missed ids: {{source}}",
                        instant=True,
                    ),
                ],
                unit="none",
                thresholds=[("green", None), ("red", 1)],
                # Gap counters have no series until the first gap.
                no_value="0",
            ),
            bargauge(
                "Buffer usage",
                "How full each in-memory buffer is. The labeler buffer near 100% evicts "
                "unlabelled samples; the storage writer's near 100% means flushes fall behind.",
                [
                    Query(
                        f"100 * max({selector(f'{name}_buffer_size')} "
                        f"/ {selector(f'{name}_buffer_capacity')})",
                        name,
                        instant=True,
                    )
                    for name in ("labeler", "trade", "storage_writer")
                ],
                unit="percent",
                maximum=100,
                thresholds=[("green", None), ("orange", 70), ("red", 90)],
            ),
        ],
        [
            dashed(
                timeseries(
                    "Messages received vs rows expected vs rows written",
                    "Feed messages in, rows the pipeline produced (dashed) and rows committed, "
                    "per second. Written should track expected per table; a widening gap is "
                    "data piling up or being lost.",
                    [
                        Query(
                            f"sum({rate('coinbase_messages_received_total')})",
                            "messages received",
                        ),
                        Query(
                            f"sum by (table) ({rate('pipeline_rows_expected_total')})",
                            "expected: {{table}}",
                        ),
                        Query(
                            f"sum by (table) ({rate('iceberg_rows_written_total')})",
                            "written: {{table}}",
                        ),
                    ],
                    unit="cps",
                    width=24,
                    height=9,
                ),
                "^expected: .*",
            ),
        ],
        [
            heatmap(
                "Flush latency",
                "Distribution of Iceberg flush times (all tables, retries included). Flushes "
                "moving up into the seconds mean the catalog or object store is slow.",
                Query(
                    f"sum by (le) ({rate('iceberg_flush_duration_seconds_bucket')})",
                    "{{le}}",
                    heatmap=True,
                ),
                unit="s",
            ),
            bargauge(
                "Flush batch size",
                "How many flushes wrote each number of rows (upper bucket bound) over the "
                "selected range: the histogram of rows per flush, all tables.",
                [
                    Query(
                        f"sum by (le) ({increase('iceberg_flush_rows_bucket')})",
                        "{{le}}",
                        instant=True,
                        heatmap=True,
                    )
                ],
                unit="none",
                width=12,
            ),
        ],
        [
            timeseries(
                "Completeness over time",
                "Completeness per table over sliding 10-minute windows, in percent: when the "
                "loss started. The alert fires below 99%.",
                [Query(completeness("10m"), "{{table}}")],
                unit="percent",
            ),
            timeseries(
                "Feed and storage incidents",
                "Events in each rate window: resyncs, reconnections, crossed "
                "books, labeler evictions, flush errors and rows spilled to local Parquet.",
                [
                    Query(
                        f"sum by (reason) ({increase(m, window='$__rate_interval')})",
                        f"{label}: {{{{reason}}}}",
                    )
                    for m, label in (
                        ("coinbase_resyncs_total", "resync"),
                        ("websocket_reconnections_total", "reconnect"),
                    )
                ]
                + [
                    Query(
                        "sum by (product) ("
                        + increase(
                            "orderbook_crossed_total", window="$__rate_interval", product=True
                        )
                        + ")",
                        "crossed book: {{product}}",
                    ),
                    Query(
                        f"sum({increase('labeler_evictions_total', window='$__rate_interval')})",
                        "labeler evictions",
                    ),
                ]
                + [
                    Query(
                        f"sum by (table) ({increase(m, window='$__rate_interval')})",
                        f"{label}: {{{{table}}}}",
                    )
                    for m, label in (
                        ("iceberg_flush_errors_total", "flush error"),
                        ("iceberg_spilled_rows_total", "spilled rows"),
                    )
                ],
                unit="none",
                bars=True,
            ),
        ],
    ]
    return dashboard(
        uid=UID,
        title="quotewatch / Data Pipeline Health",
        description="Is every feed message captured and every row stored? Message and write "
        "rates, completeness per table, gaps, buffers and Iceberg flushes.",
        rows=rows,
    )
