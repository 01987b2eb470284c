"""The remote-write client's own metrics, one set per registry."""

from __future__ import annotations

import threading
import weakref
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OUTCOMES = ("sent", "failed", "dropped", "retried")


class RemoteWriteMetrics:
    """Counters and gauges describing what the remote-write sender did.

    Use :meth:`for_registry`: a registry refuses a second copy of the same metric names.
    """

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, RemoteWriteMetrics]] = (
        weakref.WeakKeyDictionary()
    )
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.samples = Counter(
            "qw_remote_write_samples",
            "Samples by outcome: sent (accepted), retried (per retried attempt), dropped "
            "(rejected 4xx or evicted from a full queue), failed (given up at stop/deadline).",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.samples.labels(outcome)
        self.requests = Counter(
            "qw_remote_write_requests",
            "Remote-write HTTP requests by status code ('error' for network errors/timeouts).",
            ["code"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "qw_remote_write_request_duration_seconds",
            "Duration of one remote-write HTTP request attempt.",
            registry=registry,
        )
        self.queue_length = Gauge(
            "qw_remote_write_queue_length",
            "Snapshots waiting to be sent, the one being sent included.",
            registry=registry,
        )
        self.last_success = Gauge(
            "qw_remote_write_last_success_timestamp_seconds",
            "Unix time of the last request the receiver accepted.",
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> RemoteWriteMetrics:
        """The metrics registered in ``registry``, created on first use."""
        with cls._lock:
            found = cls._by_registry.get(registry)
            if found is None:
                found = cls._by_registry[registry] = cls(registry)
            return found
