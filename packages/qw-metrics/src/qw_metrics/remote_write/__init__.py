"""Prometheus Remote Write 1.0 client: encoder, HTTP client with retries, background pusher."""

from qw_metrics.errors import (
    InvalidSeriesError,
    RemoteWriteConfigError,
    RemoteWriteError,
)
from qw_metrics.remote_write.auth import Auth, BasicAuth, BearerAuth
from qw_metrics.remote_write.client import PushResult, RemoteWriteClient, SendOutcome
from qw_metrics.remote_write.encode import EncodedRequest, WriteRequestEncoder
from qw_metrics.remote_write.pusher import MetricsPusher
from qw_metrics.remote_write.retry import Backoff

__all__ = [
    "Auth",
    "Backoff",
    "BasicAuth",
    "BearerAuth",
    "EncodedRequest",
    "InvalidSeriesError",
    "MetricsPusher",
    "PushResult",
    "RemoteWriteClient",
    "RemoteWriteConfigError",
    "RemoteWriteError",
    "SendOutcome",
    "WriteRequestEncoder",
]
