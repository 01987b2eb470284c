"""Every metric quotewatch exports, in one place.

This is the only quotewatch module that imports prometheus_client (a test enforces it). Other
modules apply these metrics through qw_metrics decorators and `track_buffer`; no function body
outside this module touches a metric. Code that reads metrics by name (the health page, the
Grafana builders) takes the names from here: `sample_name(METRIC)` for quotewatch's own, the
`*_BUFFER` names given to `track_buffer`, and the `REMOTE_WRITE_*` names of the pusher's.

Names, types and labels follow the observability design (../shared/notes/design.md) with its
corrections: gaps are counted per product and `source`, and completeness is read from
`pipeline_rows_expected_total` against `iceberg_rows_written_total` plus `pipeline_rows_pending`
per table.

Every labelled counter a panel or alert reads has its series from the start, at 0, once its
label values are known (`starts_at_zero`, `start_at_zero`): "no gaps" then reads 0, not "no
data". Values that only matter when read (rows expected and pending, the state's age) are read
at collect time from the objects that own them (`ROW_ACCOUNTS`, `STATE_AGE`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from qw_metrics import Counter as LeanCounter
from qw_metrics import Histogram as LeanHistogram
from qw_metrics import (
    RollingRate,
    configure_stages,
    exponential_buckets,
    instrumentation_disabled,
    stage_histogram,
)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# Latency buckets from 50 µs to 10 s: the pipeline works in microseconds, flushes take seconds.
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
ROWS_BUCKETS = (1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000)
# 250 ns doubling to about 0.5 s: a prediction takes about 1.4 µs and a pipeline stage a few µs,
# all of which LATENCY_BUCKETS would put in its first bucket.
FAST_BUCKETS = exponential_buckets(250e-9, 2, 22)


# --- series at 0 ------------------------------------------------------------------------------
Zeroable = Counter | Histogram | LeanCounter


def start_at_zero(metrics: Iterable[Zeroable], label_sets: Iterable[Mapping[str, str]]) -> None:
    """Create each series of `metrics` for every label set, at 0 (for enumerations known at
    import: call it at module level, next to the code that counts them)."""
    if instrumentation_disabled():
        return
    targets = tuple(metrics)
    for labels in label_sets:
        for metric in targets:
            metric.labels(**labels)


def starts_at_zero(
    *metrics: Zeroable, labels_from_result: Callable[[Any], Iterable[Mapping[str, str]]]
) -> Callable[[F], F]:
    """Decorator: create the series of `metrics` for each label set the decorated function's
    result names, at 0 (for label values known at run time: products, tables)."""

    def decorate(function: F) -> F:
        if instrumentation_disabled():
            return function

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs)
            start_at_zero(metrics, labels_from_result(result))
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


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
# --- trade backfill from the REST API (`quotewatch.ingest.backfill`) -------------------------
TRADES_BACKFILLED = Counter(
    "coinbase_trades_backfilled",
    "Trades missing from the websocket that the REST API supplied, by product.",
    ["product"],
)
BACKFILL_REQUESTS = Counter(
    "coinbase_backfill_requests",
    "REST trade-page requests by outcome: the HTTP status code, or error when no response came.",
    ["status"],
)
TRADES_UNRECOVERED = Counter(
    "coinbase_trades_unrecovered",
    "Missing trade ids that backfill gave up on (not returned, retries exhausted, beyond its "
    "bound, or still queued at shutdown), by product.",
    ["product"],
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
    "ml_predict_duration_seconds",
    "Time for one model prediction (warm-up calls, which predict nothing, are not timed).",
    buckets=FAST_BUCKETS,
)
ML_TRAIN = LeanHistogram(
    "ml_train_duration_seconds",
    "Time for one training step: the SGD updates for the labels one book update brought.",
    buckets=LATENCY_BUCKETS,
)
ML_SAMPLES = Counter("ml_samples", "Labelled training samples, by label.", ["label"])
ML_PREDICTIONS = Counter("ml_predictions", "Predictions made, by predicted class.", ["prediction"])
LABELER_EVICTIONS = Counter(
    "labeler_evictions", "Samples evicted from the labeler buffer before they were labelled."
)
# What `timed(stage=...)` records into: time per call of each pipeline stage.
configure_stages(buckets=FAST_BUCKETS)
STAGE_DURATION = stage_histogram()


# --- collect-time values ----------------------------------------------------------------------
def _after_init(cls: type[T], added: Callable[[Any], None]) -> type[T]:
    """Make every `cls()` hand the new instance to `added` once its __init__ returned."""
    if instrumentation_disabled():
        return cls
    original = cls.__init__

    @functools.wraps(original)
    def __init__(obj: Any, *args: Any, **kwargs: Any) -> None:
        original(obj, *args, **kwargs)
        added(obj)

    cls.__init__ = __init__  # type: ignore[method-assign, assignment]
    return cls


class _Instances:
    """Instances of the classes given to `track`, held weakly, for reading at collect time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: weakref.WeakSet[Any] = weakref.WeakSet()

    def track(self, cls: type[T]) -> type[T]:
        """Class decorator: every instance is tracked from the end of its __init__."""
        return _after_init(cls, self._add)

    def _add(self, obj: Any) -> None:
        with self._lock:
            self._live.add(obj)

    def live(self) -> list[Any]:
        """The tracked instances alive now."""
        with self._lock:
            return list(self._live)


class RowSource(Protocol):
    """What a pipeline shows: rows produced for storage per table, since it started, as a
    mapping it updates in place (so it can be read without keeping the pipeline alive)."""

    def rows_produced(self) -> Mapping[str, int]: ...


class RowHolder(Protocol):
    """What a storage writer shows: rows per table it holds, in memory or in spill files."""

    def rows_held(self) -> Mapping[str, int]: ...


class RowAccounts:
    """`pipeline_rows_expected_total` and `pipeline_rows_pending`, read at collect time.

    Completeness is rows committed plus rows pending over rows expected. The three are read
    within microseconds of each other (this collector is registered right after
    `iceberg_rows_written_total`), so a row never counts as both pending and written, or as
    neither, and a healthy run reads exactly 100%. Expected rows are summed over every pipeline
    the process made, finished ones included, so the counter never goes down; only each one's
    small row-count mapping is kept, not the pipeline.
    """

    EXPECTED = "pipeline_rows_expected"
    PENDING = "pipeline_rows_pending"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._produced: list[Mapping[str, int]] = []
        self.holders = _Instances()

    def source(self, cls: type[T]) -> type[T]:
        """Class decorator: every instance's `rows_produced()` adds to the expected rows."""
        return _after_init(cls, self._add_source)

    def _add_source(self, obj: RowSource) -> None:
        with self._lock:
            self._produced.append(obj.rows_produced())

    def holder(self, cls: type[T]) -> type[T]:
        """Class decorator: every live instance's `rows_held()` adds to the pending rows."""
        return self.holders.track(cls)

    def describe(self) -> list[Metric]:
        """The two families, without samples, for the registry's name-clash check."""
        return self._families({}, {})

    def collect(self) -> list[Metric]:
        """Pending first, then expected: a row submitted in between reads as expected, not
        pending, for the microseconds until the next scrape."""
        pending: dict[str, float] = {}
        for writer in self.holders.live():
            for table, rows in writer.rows_held().items():
                pending[table] = pending.get(table, 0.0) + rows
        with self._lock:
            produced = list(self._produced)
        expected: dict[str, float] = {}
        for counts in produced:
            for table, rows in counts.items():
                expected[table] = expected.get(table, 0.0) + rows
        return self._families(expected, pending)

    def _families(
        self, expected: Mapping[str, float], pending: Mapping[str, float]
    ) -> list[Metric]:
        produced = CounterMetricFamily(
            self.EXPECTED,
            "Rows the pipeline produced for storage, by table: the denominator of completeness.",
            labels=["table"],
        )
        for table, rows in sorted(expected.items()):
            produced.add_metric([table], rows)
        held = GaugeMetricFamily(
            self.PENDING,
            "Rows produced but not committed yet that storage still holds, by table: buffered "
            "for their next flush, awaiting a retry, or spilled to disk awaiting recovery.",
            labels=["table"],
        )
        for table, rows in sorted(pending.items()):
            held.add_metric([table], rows)
        return [produced, held]


# --- storage ----------------------------------------------------------------------------------
ROWS_WRITTEN = Counter("iceberg_rows_written", "Rows committed to Iceberg, by table.", ["table"])
ROW_ACCOUNTS = RowAccounts()
REGISTRY.register(ROW_ACCOUNTS)
ROWS_EXPECTED = f"{RowAccounts.EXPECTED}_total"  # sample names, for the readers
ROWS_PENDING = RowAccounts.PENDING
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


# --- frame log (`quotewatch.wal`) --------------------------------------------------------------
WAL_BYTES_WRITTEN = Counter("wal_bytes_written", "Bytes appended to the frame log.")
WAL_FSYNC_DURATION = Histogram(
    "wal_fsync_duration_seconds",
    "Time for one fsync of the frame log (one per group write).",
    buckets=LATENCY_BUCKETS,
)


class FrameLogState(Protocol):
    """What a frame log shows (`quotewatch.wal.LogState`)."""

    segments: int
    bytes: int
    max_bytes: int
    at_bound: bool


class FrameLogSource(Protocol):
    """A frame log as the gauges read it."""

    def state(self) -> FrameLogState: ...


class FrameLogGauges:
    """`wal_segments`, `wal_size_bytes`, `wal_max_bytes` and `wal_at_bound`, read at collect
    time from the frame logs alive (a closed one shows its last state, so the final push
    carries it): a process without one exports none of them (not a misleading 0)."""

    SEGMENTS = "wal_segments"
    SIZE = "wal_size_bytes"
    MAX_SIZE = "wal_max_bytes"
    AT_BOUND = "wal_at_bound"

    def __init__(self) -> None:
        self.logs = _Instances()

    def track(self, cls: type[T]) -> type[T]:
        """Class decorator: every live instance's `state()` is read at collect time."""
        return self.logs.track(cls)

    def describe(self) -> list[Metric]:
        """The families, without samples, for the registry's name-clash check."""
        return self._families([])

    def collect(self) -> list[Metric]:
        """One sample each, summed over the frame logs alive; none without one."""
        logs: list[FrameLogSource] = self.logs.live()
        return self._families([log.state() for log in logs])

    def _families(self, states: list[FrameLogState]) -> list[Metric]:
        segments = GaugeMetricFamily(self.SEGMENTS, "Frame-log segment files on disk.")
        size = GaugeMetricFamily(self.SIZE, "Bytes of frame-log segments on disk.")
        bound = GaugeMetricFamily(self.MAX_SIZE, "The frame log's size bound, in bytes.")
        at_bound = GaugeMetricFamily(
            self.AT_BOUND,
            "1 while the frame log is at its size bound: new frames go through unlogged.",
        )
        if states:
            segments.add_metric([], sum(st.segments for st in states))
            size.add_metric([], sum(st.bytes for st in states))
            bound.add_metric([], sum(st.max_bytes for st in states))
            at_bound.add_metric([], max(int(st.at_bound) for st in states))
        return [segments, size, bound, at_bound]


FRAME_LOG_GAUGES = FrameLogGauges()
REGISTRY.register(FRAME_LOG_GAUGES)
WAL_FRAMES_UNLOGGED = Counter(
    "wal_frames_unlogged",
    "Frames processed but not logged because the frame log was at its size bound.",
)
WAL_REPLAYED_FRAMES = Counter(
    "wal_replayed_frames", "Frames replayed from the frame log at start to restore raw rows."
)
WAL_DERIVED_FRAMES_LOST = Counter(
    "wal_derived_frames_lost",
    "Frames replayed at start whose derived rows (features, predictions) had not been "
    "committed before the crash: they are not rebuilt, by table.",
    ["table"],
)
start_at_zero((WAL_DERIVED_FRAMES_LOST,), ({"table": t} for t in ("features", "predictions")))


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


# --- model quality (issue 15): prequential scores, read at collect time ---------------------
class ScoredModel(Protocol):
    """What a classifier shows: its product and its state, whose `scores` may be None."""

    product: str

    def state(self) -> Any: ...


class ModelScoresCollector:
    """Gauges of each live classifier's rolling prequential scores, by product and predictor
    (`model` or `base_rate`), read at collect time from its state: nothing per message."""

    # (metric, help, ModelScores field for the model, field for the base rate or None)
    GAUGES: tuple[tuple[str, str, str, str | None], ...] = (
        ("ml_log_loss", "Rolling prequential log loss, by predictor.", "log_loss",
         "log_loss_base"),
        ("ml_brier_score", "Rolling prequential Brier score, by predictor.", "brier",
         "brier_base"),
        ("ml_roc_auc", "Rolling prequential ROC AUC, by predictor.", "auc", "auc_base"),
        ("ml_accuracy", "Rolling prequential accuracy at 0.5, by predictor.", "accuracy",
         "accuracy_base"),
        ("ml_log_loss_skill", "Rolling log-loss skill, 1 - logloss_model / logloss_base.",
         "skill", None),
        ("ml_scored_samples", "Samples in the rolling prequential window.", "samples", None),
        ("ml_label_rate", "Share of label 1 in the rolling prequential window.",
         "positive_rate", None),
    )  # fmt: skip

    def __init__(self) -> None:
        self.models = _Instances()

    def track(self, cls: type[T]) -> type[T]:
        """Class decorator: every live instance's scores are exported."""
        return self.models.track(cls)

    def describe(self) -> list[Metric]:
        """The families, without samples, for the registry's name-clash check."""
        return self._families([])

    def collect(self) -> list[Metric]:
        """One sample per live classifier with scores, per gauge and predictor."""
        return self._families(self.models.live())

    def _families(self, models: list[ScoredModel]) -> list[Metric]:
        scored = [(m.product, m.state().scores) for m in models]
        families: list[Metric] = []
        for name, text, field, base in self.GAUGES:
            labels = ["product", "predictor"] if base else ["product"]
            family = GaugeMetricFamily(name, text, labels=labels)
            for product, scores in sorted(scored, key=lambda ps: ps[0]):
                if scores is None:
                    continue
                for predictor, attr in (("model", field), ("base_rate", base)):
                    if attr is None:
                        continue
                    value = getattr(scores, attr)
                    if value is not None:
                        family.add_metric([product, predictor] if base else [product], value)
            families.append(family)
        return families


MODEL_SCORES = ModelScoresCollector()
REGISTRY.register(MODEL_SCORES)


# --- dashboard --------------------------------------------------------------------------------
class Published(Protocol):
    """A state store: the wall-clock time of its last update."""

    def updated_at(self) -> float: ...


class StateAge:
    """`dashboard_update_age_seconds`: seconds since the newest state store's last update,
    read at collect time, so it rises while the pipeline publishes nothing, page open or not."""

    NAME = "dashboard_update_age_seconds"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._newest: weakref.ref[Any] | None = None

    def track(self, cls: type[T]) -> type[T]:
        """Class decorator: each new instance becomes the store whose age is reported."""
        return _after_init(cls, self._newest_is)

    def _newest_is(self, store: Published) -> None:
        self._newest = weakref.ref(store)

    def describe(self) -> list[Metric]:
        """The family, without samples, for the registry's name-clash check."""
        return [self._family(None)]

    def collect(self) -> list[Metric]:
        """The age of the newest live store; no sample when there is none."""
        ref = self._newest
        store: Published | None = None if ref is None else ref()
        return [self._family(None if store is None else self._clock() - store.updated_at())]

    def _family(self, age: float | None) -> Metric:
        return GaugeMetricFamily(
            self.NAME,
            "Seconds since the pipeline last published state (read when collected).",
            value=age,
        )


STATE_AGE = StateAge()
REGISTRY.register(STATE_AGE)
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
# Queues overflow (the labeler evicts, the writer spills), so their utilisation is a warning
# sign. A ring buffer keeps the newest items and is meant to be full: its fill is information.
QUEUES = (LABELER_BUFFER, STORAGE_WRITER_BUFFER)
RINGS = (TRADE_BUFFER,)
BUFFERS = QUEUES + RINGS

# --- remote write: qw_metrics' MetricsPusher exports these itself; quotewatch only reads them.
REMOTE_WRITE_SAMPLES = "qw_remote_write_samples_total"
REMOTE_WRITE_REQUESTS = "qw_remote_write_requests_total"
REMOTE_WRITE_REQUEST_DURATION = "qw_remote_write_request_duration_seconds"
REMOTE_WRITE_QUEUE = "qw_remote_write_queue_length"  # snapshots, not samples
REMOTE_WRITE_LAST_SUCCESS = "qw_remote_write_last_success_timestamp_seconds"


def sample_name(
    metric: Counter | Gauge | Histogram | LeanCounter | LeanHistogram | StateAge,
) -> str:
    """The name `metric`'s samples carry on /metrics: a counter's ends in `_total`; a
    histogram's is the stem of its `_bucket`, `_sum` and `_count` series."""
    if isinstance(metric, StateAge):
        return metric.NAME
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
