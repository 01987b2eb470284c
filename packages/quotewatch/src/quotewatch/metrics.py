"""Every metric quotewatch exports, in one place.

This is the only quotewatch module that imports prometheus_client (a test enforces it). Other
modules apply these metrics through qw_metrics decorators and `track_buffer`; no function body
outside this module touches a metric. Code that reads metrics by name (the health page, the
Grafana builders) takes the names from here: `sample_name(METRIC)` for quotewatch's own, the
`*_BUFFER` names given to `track_buffer`, and the `REMOTE_WRITE_*` names of the pusher's.

Names, types and labels follow the observability design (../shared/notes/design.md) with its
corrections: gaps are counted per product and `source`, and completeness is read from
`pipeline_rows_expected_total` against `iceberg_rows_written_total` per table.
"""

from __future__ import annotations

import logging

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from qw_metrics import Counter as LeanCounter
from qw_metrics import Histogram as LeanHistogram
from qw_metrics import RollingRate, stage_histogram

# Latency buckets from 50 µs to 10 s: the pipeline works in microseconds, flushes take seconds.
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
ROWS_BUCKETS = (1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000)

# --- feed (ingest) ---------------------------------------------------------------------------
# Counted on every frame: qw_metrics' lean counter (same exposition, no lock per increment).
MESSAGES_RECEIVED = LeanCounter(
    "coinbase_messages_received", "Feed messages received, by message type.", ["type"]
)
MESSAGES_INVALID = LeanCounter(
    "coinbase_messages_invalid",
    "Feed messages that failed validation and were skipped, by reason.",
    ["reason"],
)
SEQUENCE_GAPS = Counter(
    "coinbase_sequence_gaps",
    "Gaps (runs of missing ids) detected, by product and id source "
    "(trade_id, sequence_num or heartbeat).",
    ["product", "source"],
)
MESSAGES_MISSED = Counter(
    "coinbase_messages_missed",
    "Ids missing inside detected gaps, by product and id source.",
    ["product", "source"],
)
MATCH_SEQUENCE = Gauge(
    "coinbase_match_sequence",
    "Last match `sequence` seen. Information only: it counts full-channel events the client "
    "never sees, so it jumps between matches and is NOT a gap signal.",
    ["product"],
)
LAST_TRADE_ID = Gauge("coinbase_last_trade_id", "Last trade id received.", ["product"])
RESYNCS = Counter(
    "coinbase_resyncs",
    "Level2 resubscriptions made to get a fresh snapshot, by reason.",
    ["reason"],
)
CROSSED_BOOKS = Counter(
    "orderbook_crossed", "Updates after which best bid >= best ask, by product.", ["product"]
)
RECONNECTIONS = Counter(
    "websocket_reconnections", "Websocket reconnections, by feed and reason.", ["feed", "reason"]
)

# --- pipeline ---------------------------------------------------------------------------------
# Histograms observed on every message use qw_metrics' lean histogram (same exposition, no lock,
# about a third of the cost per observation).
MESSAGE_LATENCY = LeanHistogram(
    "pipeline_message_latency_seconds",
    "Time from receiving a frame to the state snapshot reflecting it.",
    buckets=LATENCY_BUCKETS,
)
EVENT_LOOP_LAG = LeanHistogram(
    "pipeline_event_loop_lag_seconds",
    "How late the feed's event loop wakes up a periodic probe; large values mean a freeze.",
    buckets=LATENCY_BUCKETS,
)
# `counted(ORDERBOOK_RATE)` feeds it; the gauge reads the rate at collect time.
ORDERBOOK_RATE = RollingRate(window=10.0)
ORDERBOOK_UPDATES_PER_SECOND = Gauge(
    "orderbook_updates_per_second", "Order-book updates per second over the last 10 s."
)
ORDERBOOK_UPDATES_PER_SECOND.set_function(ORDERBOOK_RATE.rate)
ML_PREDICT = LeanHistogram(
    "ml_predict_duration_seconds", "Time for one model prediction.", buckets=LATENCY_BUCKETS
)
ML_TRAIN = LeanHistogram(
    "ml_train_duration_seconds", "Time for one mini-batch partial_fit.", buckets=LATENCY_BUCKETS
)
ML_SAMPLES = Counter("ml_samples", "Labelled training samples, by label.", ["label"])
ML_PREDICTIONS = Counter("ml_predictions", "Predictions made, by predicted class.", ["prediction"])
LABELER_EVICTIONS = Counter(
    "labeler_evictions", "Samples evicted from the labeler buffer before they were labelled."
)
# What `timed(stage=...)` records into: time per call of each pipeline stage.
STAGE_DURATION = stage_histogram()
ROWS_EXPECTED = Counter(
    "pipeline_rows_expected",
    "Rows the pipeline produced for storage, by table: the denominator of completeness.",
    ["table"],
)

# --- storage ----------------------------------------------------------------------------------
ROWS_WRITTEN = Counter("iceberg_rows_written", "Rows committed to Iceberg, by table.", ["table"])
FLUSHES = Counter("iceberg_flush", "Successful flushes (one commit each), by table.", ["table"])
FLUSH_DURATION = Histogram(
    "iceberg_flush_duration_seconds",
    "Time for one flush, retries included, by table.",
    ["table"],
    buckets=LATENCY_BUCKETS,
)
FLUSH_ROWS = Histogram(
    "iceberg_flush_rows", "Rows per flush, by table.", ["table"], buckets=ROWS_BUCKETS
)
FLUSH_ERRORS = Counter("iceberg_flush_errors", "Failed flush attempts, by table.", ["table"])
SPILLED_ROWS = Counter(
    "iceberg_spilled_rows", "Rows spilled to local Parquet while storage was down.", ["table"]
)
COMMIT_RETRIES = Counter(
    "iceberg_commit_retries",
    "Commits retried after another writer (another instance) committed the same table first.",
)


class _CommitRetries(logging.Handler):
    """Counts pyiceberg's retries of a commit that lost the optimistic race on the catalog.

    pyiceberg retries inside `Transaction.commit_transaction` and reports each retry only by
    this warning, so the count is taken from its log records, outside the storage code.
    """

    PREFIX = "Commit failed due to a concurrent update"

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith(self.PREFIX):
            COMMIT_RETRIES.inc()


logging.getLogger("pyiceberg.table").addHandler(_CommitRetries(logging.WARNING))

# --- dashboard --------------------------------------------------------------------------------
DASHBOARD_UPDATE_AGE = Gauge(
    "dashboard_update_age_seconds", "Age of the state snapshot the dashboard last rendered."
)
DASHBOARD_CALLBACK_DURATION = Histogram(
    "dashboard_callback_duration_seconds",
    "Time to run one dashboard callback.",
    buckets=LATENCY_BUCKETS,
)
DASHBOARD_CALLBACKS = Counter("dashboard_callbacks", "Dashboard update callbacks run.")


# --- buffers: `track_buffer` names, exposed as `<name>_buffer_size` / `<name>_buffer_capacity`
LABELER_BUFFER = "labeler"
TRADE_BUFFER = "trade"
STORAGE_WRITER_BUFFER = "storage_writer"
BUFFERS = (LABELER_BUFFER, TRADE_BUFFER, STORAGE_WRITER_BUFFER)

# --- remote write: qw_metrics' MetricsPusher exports these itself; quotewatch only reads them.
REMOTE_WRITE_SAMPLES = "qw_remote_write_samples_total"
REMOTE_WRITE_REQUESTS = "qw_remote_write_requests_total"
REMOTE_WRITE_REQUEST_DURATION = "qw_remote_write_request_duration_seconds"
REMOTE_WRITE_QUEUE = "qw_remote_write_queue_length"
REMOTE_WRITE_LAST_SUCCESS = "qw_remote_write_last_success_timestamp_seconds"


def sample_name(metric: Counter | Gauge | Histogram | LeanCounter | LeanHistogram) -> str:
    """The name `metric`'s samples carry on /metrics: a counter's ends in `_total`; a
    histogram's is the stem of its `_bucket`, `_sum` and `_count` series."""
    if isinstance(metric, LeanCounter | LeanHistogram):
        name, counter = metric.name, isinstance(metric, LeanCounter)
    else:
        name, counter = metric._name, isinstance(metric, Counter)
    return f"{name}_total" if counter else name


# --- exposition -------------------------------------------------------------------------------
# Names other modules use instead of importing prometheus_client themselves.
Registry = CollectorRegistry
DEFAULT_REGISTRY: CollectorRegistry = REGISTRY


def exposition(registry: CollectorRegistry = REGISTRY) -> tuple[str, bytes]:
    """Prometheus text exposition of `registry`: (content type, body) for a `/metrics` route."""
    return CONTENT_TYPE_LATEST, generate_latest(registry)
