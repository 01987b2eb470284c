"""The "Data Pipeline Health" dashboard: is every message captured, and is every row stored?"""

from __future__ import annotations

from quotewatch.config import DEFAULT_JOB, DEFAULT_RUNBOOK_BASE_URL
from quotewatch.grafana.panels import (
    PIPELINE_HEALTH_UID,
    SYSTEM_PERFORMANCE_UID,
    Json,
    Panel,
    Query,
    bargauge,
    dashboard,
    dashed,
    gauge,
    header_links,
    heatmap,
    increase,
    quantile,
    rate,
    selector,
    stat,
    timeseries,
)
from quotewatch.metrics import (
    CROSSED_BOOKS,
    FLUSH_DURATION,
    FLUSH_ERRORS,
    FLUSH_ROWS,
    FRAME_LOG_GAUGES,
    LABELER_EVICTIONS,
    MESSAGES_INVALID,
    MESSAGES_MISSED,
    MESSAGES_RECEIVED,
    QUEUES,
    RECONNECTIONS,
    RESYNCS,
    RINGS,
    ROWS_EXPECTED,
    ROWS_PENDING,
    ROWS_WRITTEN,
    SEQUENCE_GAPS,
    SPILLED_ROWS,
    WAL_BYTES_WRITTEN,
    WAL_DERIVED_FRAMES_LOST,
    WAL_FRAMES_UNLOGGED,
    WAL_FSYNC_DURATION,
    WAL_REPLAYED_FRAMES,
    sample_name,
)

UID = PIPELINE_HEALTH_UID


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
    """Rows committed or still on their way / rows the pipeline produced, per table, in
    percent, over `window`.

    Rows pending (buffered for the next flush, awaiting a retry, spilled awaiting recovery) are
    not missing: rows committed in the window plus the change in rows pending over it, against
    the rows produced, is exactly 100% when nothing is lost. `increase` and `delta` read the
    same samples and extrapolate them alike, so no flush inside the window skews the ratio.
    """
    written = f"sum by (table) ({increase(sample_name(ROWS_WRITTEN), window=window)})"
    pending = f"sum by (table) (delta({selector(ROWS_PENDING)}[{window}]))"
    expected = f"sum by (table) ({increase(ROWS_EXPECTED, window=window)})"
    return f"100 * ({written} + {pending}) / {expected}"


def buffer_fill(name: str) -> str:
    """How full buffer `name` is, in percent of its capacity (the fullest instance)."""
    return f"100 * max({selector(f'{name}_buffer_size')} / {selector(f'{name}_buffer_capacity')})"


def frame_log_rows() -> list[list[Panel]]:
    """Is every frame on disk before it is processed? The log's size and state, its writes,
    frames it could not log, and what replay at start restored."""
    gauges = FRAME_LOG_GAUGES
    return [
        [
            stat(
                "Frame log state",
                "logging: every frame is on disk before the pipeline sees it. AT BOUND: the "
                "log reached --wal-max-bytes because storage has not committed or spilled its "
                "frames; new frames go through unlogged and a crash would lose their rows. No "
                "frame log: none is open (replay, or QW_WAL_MAX_BYTES=0 as on Cloud Run).",
                [Query(f"max({selector(gauges.AT_BOUND)})", "frame log", instant=True)],
                unit="none",
                width=4,
                thresholds=[("green", None), ("red", 1)],
                states={0: "logging", 1: "AT BOUND"},
                no_value="no frame log",
            ),
            timeseries(
                "Frame log size",
                "Bytes of segments on disk and the bound (left), and segment files (right). "
                "Segments go once every raw table has committed or spilled their frames, so "
                "the size stays small while storage keeps up and climbs while it is down, up "
                "to the bound (--wal-max-bytes, 1 GiB by default), where logging stops.",
                [
                    Query(f"sum({selector(gauges.SIZE)})", "size"),
                    Query(f"sum({selector(gauges.MAX_SIZE)})", "bound"),
                    Query(f"sum({selector(gauges.SEGMENTS)})", "segments"),
                ],
                unit="bytes",
                width=10,
                right_axis={"segments": "none"},
            ),
            timeseries(
                "Frame log writes",
                "Bytes appended to the log per second (left) and the 99th percentile of one "
                "fsync (right, one per group write every --wal-fsync-interval). fsyncs nearing "
                "the interval mean the disk cannot keep up.",
                [
                    Query(f"sum({rate(sample_name(WAL_BYTES_WRITTEN))})", "bytes written"),
                    Query(quantile(0.99, sample_name(WAL_FSYNC_DURATION)), "fsync p99"),
                ],
                unit="Bps",
                width=10,
                right_axis={"fsync p99": "s"},
            ),
        ],
        [
            timeseries(
                "Frames unlogged",
                "Frames processed but not logged in each rate window, because the log was at "
                "its bound: their rows are lost if the process crashes before storage "
                "commits them. Zero when healthy.",
                [
                    Query(
                        "sum("
                        + increase(sample_name(WAL_FRAMES_UNLOGGED), window="$__rate_interval")
                        + ")",
                        "frames unlogged",
                    )
                ],
                unit="none",
                bars=True,
            ),
            stat(
                "Frame log replay at start",
                "Frames replayed from the log at start over the selected range (a previous "
                "run ended without storing them: a crash), whose raw rows were restored; and, "
                "per derived table, how many of them had features or predictions that are "
                "not rebuilt. 0 after clean shutdowns.",
                [
                    Query(
                        "sum("
                        + new_or_increase(sample_name(WAL_REPLAYED_FRAMES), window="$__range")
                        + ")",
                        "frames replayed",
                        instant=True,
                    ),
                    Query(
                        "sum by (table) ("
                        + new_or_increase(sample_name(WAL_DERIVED_FRAMES_LOST), window="$__range")
                        + ")",
                        "derived lost: {{table}}",
                        instant=True,
                    ),
                ],
                unit="none",
                width=12,
                thresholds=[("green", None), ("orange", 1)],
            ),
        ],
    ]


def model_row() -> list[Panel]:
    """Is the model earning its place? Prequential skill, log loss and AUC against the base rate."""
    return [
        timeseries(
            "Model skill",
            "Log-loss skill, 1 - logloss_model / logloss_base, over the last 1,000 labelled "
            "predictions, each scored before the model learned from it. 0 is no better than "
            "predicting the running rate of moves; below 0, worse.",
            [
                Query(
                    f"max by (product) ({selector('ml_log_loss_skill', product=True)})",
                    "{{product}}",
                )
            ],
            unit="none",
            width=8,
        ),
        timeseries(
            "Log loss: model vs base rate",
            "Rolling prequential log loss of the model and of the base-rate predictor, by "
            "product; the model's line should stay below the base rate's.",
            [
                Query(
                    f"max by (product, predictor) ({selector('ml_log_loss', product=True)})",
                    "{{product}} {{predictor}}",
                )
            ],
            unit="none",
            width=8,
        ),
        timeseries(
            "ROC AUC",
            "Rolling prequential ROC AUC of the model and of the base rate, by product: how "
            "well the probability ranks moves above non-moves (0.5 is chance).",
            [
                Query(
                    f"max by (product, predictor) ({selector('ml_roc_auc', product=True)})",
                    "{{product}} {{predictor}}",
                )
            ],
            unit="none",
            width=8,
        ),
    ]


def build(*, job: str = DEFAULT_JOB, runbook_url: str = DEFAULT_RUNBOOK_BASE_URL) -> Json:
    """The Data Pipeline Health dashboard JSON, for `job`, linking to the runbook at
    `runbook_url`."""
    rows = [
        [
            timeseries(
                "Message rate",
                "Feed messages received per second by type; malformed messages (counted and "
                "skipped) by reason. Flat zero while the app is up means the feed is silent.",
                [
                    Query(f"sum by (type) ({rate(sample_name(MESSAGES_RECEIVED))})", "{{type}}"),
                    Query(
                        f"sum by (reason) ({rate(sample_name(MESSAGES_INVALID))})",
                        "invalid: {{reason}}",
                    ),
                ],
                unit="suffix: msg/s",
            ),
            timeseries(
                "Write rate",
                "Rows committed to Iceberg per second, by table. Writes come in flushes, so "
                "this line is bursty; it should average out to the expected rows.",
                [Query(f"sum by (table) ({rate(sample_name(ROWS_WRITTEN))})", "{{table}}")],
                unit="suffix: rows/s",
            ),
        ],
        [
            gauge(
                "Data completeness",
                "Rows committed or still pending (buffered for the next flush, awaiting a "
                "retry, spilled awaiting recovery) / rows the pipeline produced, per table, "
                "over the selected time range. 100% when nothing is lost; below it, rows were "
                "dropped (rejected or lost by storage).",
                [Query(completeness("$__range"), "{{table}}", instant=True)],
                unit="percent",
                width=7,
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
                            sample_name(SEQUENCE_GAPS), window="$__range", product=True
                        )
                        + ")",
                        "gaps: {{source}}",
                        instant=True,
                    ),
                    Query(
                        "sum by (source) ("
                        + new_or_increase(
                            sample_name(MESSAGES_MISSED), window="$__range", product=True
                        )
                        + ")",
                        "missed ids: {{source}}",
                        instant=True,
                    ),
                ],
                unit="none",
                width=7,
                thresholds=[("green", None), ("red", 1)],
            ),
            bargauge(
                "Queue usage",
                "How full each queue that can overflow is. The labeler buffer near 100% evicts "
                "unlabelled samples; the storage writer's near 100% means flushes fall behind "
                "and rows are about to be spilled to disk.",
                [Query(buffer_fill(name), name, instant=True) for name in QUEUES],
                unit="percent",
                width=6,
                maximum=100,
                thresholds=[("green", None), ("orange", 70), ("red", 90)],
            ),
            bargauge(
                "Ring buffer fill",
                "How full each ring buffer is. A ring keeps the newest items and drops the "
                "oldest, so it is meant to fill up: 100% is normal, not an alarm.",
                [Query(buffer_fill(name), name, instant=True) for name in RINGS],
                unit="percent",
                width=4,
                maximum=100,
                thresholds=[("blue", None)],
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
                            f"sum({rate(sample_name(MESSAGES_RECEIVED))})",
                            "messages received",
                        ),
                        Query(
                            f"sum by (table) ({rate(ROWS_EXPECTED)})",
                            "expected: {{table}}",
                        ),
                        Query(
                            f"sum by (table) ({rate(sample_name(ROWS_WRITTEN))})",
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
                    f"sum by (le) ({rate(sample_name(FLUSH_DURATION) + '_bucket')})",
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
                        f"sum by (le) ({increase(sample_name(FLUSH_ROWS) + '_bucket')})",
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
                "Completeness per table (committed or pending / produced) over sliding "
                "10-minute windows, in percent: when the loss started. The alert fires below "
                "99% for 5 minutes.",
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
                        (sample_name(RESYNCS), "resync"),
                        (sample_name(RECONNECTIONS), "reconnect"),
                    )
                ]
                + [
                    Query(
                        "sum by (product) ("
                        + increase(
                            sample_name(CROSSED_BOOKS), window="$__rate_interval", product=True
                        )
                        + ")",
                        "crossed book: {{product}}",
                    ),
                    Query(
                        "sum("
                        + increase(sample_name(LABELER_EVICTIONS), window="$__rate_interval")
                        + ")",
                        "labeler evictions",
                    ),
                ]
                + [
                    Query(
                        f"sum by (table) ({increase(m, window='$__rate_interval')})",
                        f"{label}: {{{{table}}}}",
                    )
                    for m, label in (
                        (sample_name(FLUSH_ERRORS), "flush error"),
                        (sample_name(SPILLED_ROWS), "spilled rows"),
                    )
                ],
                unit="none",
                bars=True,
            ),
        ],
        *frame_log_rows(),
        model_row(),
    ]
    return dashboard(
        uid=UID,
        title="quotewatch / Data Pipeline Health",
        description="Is every feed message captured and every row stored? Message and write "
        "rates, completeness per table, gaps, buffers, Iceberg flushes and the frame log.",
        rows=rows,
        links=header_links(
            "System Performance",
            "Why is it slow or frozen? Latency, stages, the event loop, the pusher",
            SYSTEM_PERFORMANCE_UID,
            runbook_url,
        ),
        job=job,
    )
