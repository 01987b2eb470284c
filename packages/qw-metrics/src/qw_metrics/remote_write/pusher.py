"""Background pusher: snapshots a registry every interval and sends the snapshots in order."""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry

from qw_metrics.errors import RemoteWriteConfigError
from qw_metrics.remote_write.auth import Auth, BasicAuth, BearerAuth
from qw_metrics.remote_write.client import RemoteWriteClient, SendOutcome
from qw_metrics.remote_write.collect import read_registry
from qw_metrics.remote_write.encode import EncodedRequest, WriteRequestEncoder
from qw_metrics.remote_write.metrics import RemoteWriteMetrics

log = logging.getLogger("qw_metrics.remote_write")

BACKLOG_SECONDS = 600.0
"""While the receiver is down, keep this many seconds' worth of snapshots (10 minutes)."""

BACKLOG_BYTES = 64 * 1024 * 1024
"""...and at most this many bytes of encoded requests: a short interval or a big registry would
otherwise fill memory while the receiver is down (64 MiB)."""

METADATA_INTERVAL = 600.0
"""Send every family's type, help and unit with the first snapshot and then this often."""


@dataclass(eq=False)
class _Snapshot:
    requests: list[EncodedRequest]
    taken_at: float = 0.0
    next: int = 0
    in_flight: bool = False
    evicted: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)

    def unsent_samples(self) -> int:
        start = self.next + (1 if self.in_flight else 0)
        return sum(request.samples for request in self.requests[start:])

    def size(self) -> int:
        return sum(len(request.body) for request in self.requests)


class MetricsPusher:
    """Pushes ``registry`` through ``client`` every ``interval`` seconds from daemon threads.

    Never blocks the caller: collection and sending run in the background. While the receiver
    is down, up to ``max_queued`` snapshots wait (default: 10 minutes' worth), none older than
    `BACKLOG_SECONDS` and at most ``max_queued_bytes`` in all; beyond that the oldest are
    dropped and counted. Snapshots are sent oldest first, so every series stays in
    timestamp order. ``client=None`` gives a disabled pusher whose methods do nothing.
    """

    def __init__(
        self,
        client: RemoteWriteClient | None,
        registry: CollectorRegistry = REGISTRY,
        interval: float = 15.0,
        external_labels: Mapping[str, str] | None = None,
        *,
        max_queued: int | None = None,
        max_queued_bytes: int = BACKLOG_BYTES,
        flush_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
            raise RemoteWriteConfigError(
                f"interval={interval!r}; pass a positive number of seconds"
            )
        self.client = client
        self.registry = registry
        self.interval = float(interval)
        self.max_queued = max_queued or max(1, math.ceil(BACKLOG_SECONDS / self.interval))
        if self.max_queued < 1:
            raise RemoteWriteConfigError(f"max_queued={max_queued!r}; pass at least 1")
        if max_queued_bytes < 1:
            raise RemoteWriteConfigError(f"max_queued_bytes={max_queued_bytes!r}; pass >= 1")
        self.max_queued_bytes = max_queued_bytes
        self._queued_bytes = 0
        self.flush_timeout = flush_timeout
        self._clock = clock
        self._encoder = WriteRequestEncoder(external_labels)
        self._metrics = RemoteWriteMetrics.for_registry(registry) if client else None
        self._queue: deque[_Snapshot] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._closing = False
        self._aborted = False
        self._last_ms = 0
        self._metadata_at: float | None = None
        self._threads: list[threading.Thread] = []

    @property
    def enabled(self) -> bool:
        """False for the disabled pusher returned when no URL is configured."""
        return self.client is not None

    @classmethod
    def from_env(
        cls,
        *,
        job: str = "qw-metrics",
        registry: CollectorRegistry = REGISTRY,
        environ: Mapping[str, str] | None = None,
    ) -> MetricsPusher:
        """Build from GRAFANA_PUSH_URL, GRAFANA_USER, GRAFANA_API_KEY, ENVIRONMENT and
        QW_PUSH_INTERVAL; without GRAFANA_PUSH_URL returns a disabled pusher."""
        env = os.environ if environ is None else environ
        url = env.get("GRAFANA_PUSH_URL", "").strip()
        if not url:
            log.info("remote write disabled: GRAFANA_PUSH_URL is not set")
            return cls(None, registry)
        user = env.get("GRAFANA_USER", "").strip()
        key = env.get("GRAFANA_API_KEY", "").strip()
        auth: Auth | None = None
        if user:
            if not key:
                raise RemoteWriteConfigError(
                    "GRAFANA_USER is set but GRAFANA_API_KEY is empty; set the access-policy "
                    "token with metrics:write in GRAFANA_API_KEY"
                )
            auth = BasicAuth(user, key)
        elif key:
            auth = BearerAuth(key)
        raw_interval = env.get("QW_PUSH_INTERVAL", "").strip() or "15"
        try:
            interval = float(raw_interval)
        except ValueError:
            raise RemoteWriteConfigError(
                f"QW_PUSH_INTERVAL={raw_interval!r} is not a number; set seconds, e.g. 15"
            ) from None
        labels = {
            "job": job,
            "instance": socket.gethostname(),
            "environment": env.get("ENVIRONMENT", "").strip() or "local",
        }
        return cls(RemoteWriteClient(url, auth=auth), registry, interval, labels)

    def __repr__(self) -> str:
        return (
            f"MetricsPusher(client={self.client!r}, interval={self.interval!r}, "
            f"max_queued={self.max_queued!r})"
        )

    def __enter__(self) -> MetricsPusher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the collector and sender threads (no-op when disabled or already started)."""
        if self.client is None or self._threads:
            return
        self._threads = [
            threading.Thread(
                target=self._collect_loop, name="qw-remote-write-collect", daemon=True
            ),
            threading.Thread(target=self._send_loop, name="qw-remote-write-send", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, flush: bool = True) -> None:
        """Stop pushing. With ``flush``, take a final snapshot, end every series with a
        staleness marker just after it (so the stopped process's series end at once in
        Prometheus and Grafana), and keep sending the backlog for up to ``flush_timeout``
        seconds; what is left then is counted as failed."""
        if self.client is None or not self._threads or self._stop.is_set():
            return
        collector, sender = self._threads
        self._stop.set()
        collector.join()
        if flush:
            self._snapshot(final=True)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if flush:
            sender.join(self.flush_timeout)
        if sender.is_alive():
            with self._cond:
                self._aborted = True
                if self._queue:
                    self._queue[0].cancel.set()
                self._cond.notify_all()
            # An in-flight request finishes within the client's timeout.
            sender.join()

    def _collect_loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self._snapshot()
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:  # a slow collect skipped ticks; do not burst to catch up
                next_at = now + self.interval

    def _snapshot(self, *, final: bool = False) -> None:
        # Timestamps strictly increase even if the wall clock steps back, keeping series ordered.
        now = self._clock()
        timestamp_ms = max(int(now * 1000), self._last_ms + 1)
        self._last_ms = timestamp_ms
        try:
            families = read_registry(self.registry)
            requests = self._encoder.encode(families, timestamp_ms)
            if self._metadata_at is None or now - self._metadata_at >= METADATA_INTERVAL:
                requests += self._encoder.encode_metadata(families)
                self._metadata_at = now
            if final:
                self._last_ms += 1
                requests += self._encoder.encode_stale(self._last_ms)
        except Exception as exc:
            log.error("remote write snapshot skipped: %s: %s", type(exc).__name__, exc)
            return
        if not requests:
            return
        assert self._metrics is not None
        with self._cond:
            snapshot = _Snapshot(requests, now)
            self._queue.append(snapshot)
            self._queued_bytes += snapshot.size()
            while len(self._queue) > 1 and self._over_bound(now):
                self._evict_oldest()
            self._metrics.queue_length.set(len(self._queue))
            self._cond.notify_all()

    def _over_bound(self, now: float) -> bool:
        """Whether the backlog holds too many snapshots, bytes, or too old a snapshot."""
        return (
            len(self._queue) > self.max_queued
            or self._queued_bytes > self.max_queued_bytes
            or now - self._queue[0].taken_at > BACKLOG_SECONDS
        )

    def _evict_oldest(self) -> None:
        assert self._metrics is not None
        oldest = self._queue.popleft()
        self._queued_bytes -= oldest.size()
        oldest.evicted = True
        oldest.cancel.set()
        dropped = oldest.unsent_samples()
        self._metrics.samples.labels("dropped").inc(dropped)
        log.warning(
            "remote write backlog full (%d snapshots, %d bytes); dropped the oldest (%d samples)",
            len(self._queue) + 1,
            self._queued_bytes + oldest.size(),
            dropped,
        )

    def _send_loop(self) -> None:
        assert self.client is not None
        assert self._metrics is not None
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._aborted or not self._queue:
                    break
                snapshot = self._queue[0]
                snapshot.in_flight = True
                request = snapshot.requests[snapshot.next]
            outcome = self.client.send(request, cancel=snapshot.cancel, metrics=self._metrics)
            with self._cond:
                snapshot.in_flight = False
                snapshot.next += 1
                done = snapshot.next >= len(snapshot.requests)
                if outcome is SendOutcome.CANCELLED:
                    # Evicted from a full queue (dropped) or abandoned at stop (failed).
                    outcome_label = "dropped" if snapshot.evicted else "failed"
                    self._metrics.samples.labels(outcome_label).inc(request.samples)
                if not snapshot.evicted and (done or outcome is SendOutcome.CANCELLED):
                    self._queue.popleft()
                    self._queued_bytes -= snapshot.size()
                    self._metrics.samples.labels("failed").inc(snapshot.unsent_samples())
                self._metrics.queue_length.set(len(self._queue))
        with self._cond:
            left = sum(snapshot.unsent_samples() for snapshot in self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._metrics.queue_length.set(0)
        if left:
            self._metrics.samples.labels("failed").inc(left)
            log.error("remote write stopped with %d samples unsent", left)
