"""qw-metrics: decorator-first Prometheus instrumentation with a native remote-write client."""

from qw_metrics._values import native_speedups
from qw_metrics._wrappers import Timed, instrumentation_disabled
from qw_metrics.budget import DEFAULT_MAX_SERIES, SeriesBudget, series_budget, set_series_budget
from qw_metrics.buffers import track_buffer
from qw_metrics.counting import counted, recorded, seconds_since
from qw_metrics.errors import (
    InvalidNameError,
    InvalidSeriesError,
    LabelError,
    MultiprocessModeError,
    RemoteWriteConfigError,
    RemoteWriteError,
    StageConfigError,
)
from qw_metrics.lean import Counter, CounterChild, Histogram, HistogramChild, exponential_buckets
from qw_metrics.remote_write import BasicAuth, BearerAuth, MetricsPusher, RemoteWriteClient
from qw_metrics.rolling_rate import RollingRate
from qw_metrics.sequence import Gap, Observation, SequenceKind, SequenceStats, SequenceTracker
from qw_metrics.timing import configure_stages, stage_histogram, timed

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_SERIES",
    "BasicAuth",
    "BearerAuth",
    "Counter",
    "CounterChild",
    "Gap",
    "Histogram",
    "HistogramChild",
    "InvalidNameError",
    "InvalidSeriesError",
    "LabelError",
    "MetricsPusher",
    "MultiprocessModeError",
    "Observation",
    "RemoteWriteClient",
    "RemoteWriteConfigError",
    "RemoteWriteError",
    "RollingRate",
    "SequenceKind",
    "SequenceStats",
    "SequenceTracker",
    "SeriesBudget",
    "StageConfigError",
    "Timed",
    "__version__",
    "configure_stages",
    "counted",
    "exponential_buckets",
    "instrumentation_disabled",
    "native_speedups",
    "recorded",
    "seconds_since",
    "series_budget",
    "set_series_budget",
    "stage_histogram",
    "timed",
    "track_buffer",
]
