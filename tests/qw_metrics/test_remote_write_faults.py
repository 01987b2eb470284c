"""Retries, drops, timeouts and outages against a local receiver the test scripts."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from qw_metrics import BearerAuth, MetricsPusher, RemoteWriteClient
from qw_metrics.remote_write import Backoff, SendOutcome
from qw_metrics.remote_write.compress import decompress_block
from qw_metrics.remote_write.encode import WriteRequestEncoder
from qw_metrics.remote_write.metrics import RemoteWriteMetrics
from support.remote_pb2 import WriteRequest


@dataclass(frozen=True)
class Reply:
    """One scripted answer; ``hang`` seconds of silence first."""

    status: int = 204
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    hang: float = 0.0


@dataclass
class Received:
    headers: dict[str, str]
    request: WriteRequest
    status: int

    def series(self) -> list[tuple[tuple[tuple[str, str], ...], float, int]]:
        return [
            (tuple((lb.name, lb.value) for lb in ts.labels), s.value, s.timestamp)
            for ts in self.request.timeseries
            for s in ts.samples
        ]


@dataclass
class Receiver:
    """Remote-write receiver on 127.0.0.1 answering from ``script`` (then 204)."""

    script: list[Reply] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/write"

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status <= 299]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    reply = receiver.script.pop(0) if receiver.script else Reply()
                    receiver.received.append(
                        Received(
                            {k.lower(): v for k, v in self.headers.items()},
                            WriteRequest.FromString(decompress_block(body)),
                            reply.status if not reply.hang else 0,
                        )
                    )
                if reply.hang:
                    time.sleep(reply.hang)
                    return
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.start()
    yield rec
    rec.stop()


class Sleeps:
    """Injected sleep: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_registry(series: int = 3) -> tuple[CollectorRegistry, Counter]:
    registry = CollectorRegistry()
    counter = Counter("rw_things", "things", ["n"], registry=registry)
    for n in range(series):
        counter.labels(str(n)).inc(n)
    return registry, counter


def samples_of(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_each_request_carries_exactly_the_protocol_headers(receiver: Receiver) -> None:
    registry, _ = make_registry()
    with RemoteWriteClient(receiver.url, headers={"X-Team": "quotes"}) as client:
        client.push(registry)
    headers = receiver.received[0].headers
    assert headers["content-encoding"] == "snappy"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-prometheus-remote-write-version"] == "0.1.0"
    assert headers["user-agent"] == "qw-metrics/0.1.0"
    assert headers["x-team"] == "quotes"
    assert "retry-attempt" not in headers


def test_500s_are_retried_with_backoff_then_delivered_once_in_order(receiver: Receiver) -> None:
    registry, counter = make_registry(series=2500)  # two requests per push
    receiver.script = [Reply(500), Reply(503, body=b"busy"), Reply(502)]
    sleeps = Sleeps()
    stamps = [1_700_000_000_000, 1_700_000_015_000]
    with RemoteWriteClient(receiver.url, sleep=sleeps) as client:
        for stamp in stamps:
            result = client.push(registry, timestamp_ms=stamp)
            assert (result.sent, result.dropped, result.failed) == (2500, 0, 0)
            counter.labels("7").inc()
    assert [r.status for r in receiver.received] == [500, 503, 502, 204, 204, 204, 204]
    attempts = [r.headers.get("retry-attempt") for r in receiver.received[:4]]
    assert attempts == [None, "1", "2", "3"]
    # One request retried 3 times: the same body each time, delivered once.
    assert receiver.received[0].request == receiver.received[3].request
    # 30 ms doubling, each delay in [base/2, base].
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays, start=1):
        base = 0.03 * 2 ** (attempt - 1)
        assert base / 2 <= delay <= base
    delivered = [s for r in receiver.accepted for s in r.series()]
    assert len(delivered) == 5000
    assert len({(labels, ts) for labels, _, ts in delivered}) == 5000
    last_ts: dict[tuple[tuple[str, str], ...], int] = {}
    for labels, _, ts in delivered:
        assert ts > last_ts.get(labels, 0)
        last_ts[labels] = ts
    values = {labels: value for labels, value, ts in delivered if ts == stamps[1]}
    assert values[(("__name__", "rw_things_total"), ("n", "7"))] == 8.0


def test_backoff_doubles_up_to_five_seconds() -> None:
    backoff = Backoff()
    delays = [backoff.delay(attempt) for attempt in range(1, 20)]
    assert 0.015 <= delays[0] <= 0.03
    assert all(2.5 <= d <= 5.0 for d in delays[9:])


@pytest.mark.parametrize("kind", ["seconds", "http-date"])
def test_429_retry_after_is_honoured(receiver: Receiver, kind: str) -> None:
    if kind == "seconds":
        value, expected = "7", 7.0
    else:
        value, expected = email.utils.formatdate(time.time() + 120, usegmt=True), 120.0
    receiver.script = [Reply(429, headers=(("Retry-After", value),))]
    sleeps = Sleeps()
    registry, _ = make_registry()
    with RemoteWriteClient(receiver.url, sleep=sleeps) as client:
        assert client.push(registry).sent == 3
    assert [r.status for r in receiver.received] == [429, 204]
    assert sleeps.delays == [pytest.approx(expected, abs=1.5)]


def test_400_is_not_retried_and_the_drop_is_counted_and_logged(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"out of order sample\x00 <raw>"
    receiver.script = [Reply(400, body=body)]
    own = CollectorRegistry()
    metrics = RemoteWriteMetrics.for_registry(own)
    registry, _ = make_registry()
    sleeps = Sleeps()
    with RemoteWriteClient(receiver.url, sleep=sleeps) as client:
        request = WriteRequestEncoder().encode(registry.collect(), 1_700_000_000_000)[0]
        assert client.send(request, metrics=metrics) is SendOutcome.DROPPED
    assert len(receiver.received) == 1
    assert sleeps.delays == []
    assert samples_of(own, "qw_remote_write_samples_total", outcome="dropped") == 3
    assert samples_of(own, "qw_remote_write_samples_total", outcome="sent") == 0
    assert samples_of(own, "qw_remote_write_requests_total", code="400") == 1
    assert repr(body.decode()) in caplog.text


def test_hanging_receiver_times_out_then_retries(receiver: Receiver) -> None:
    receiver.script = [Reply(hang=1.0)]
    own = CollectorRegistry()
    metrics = RemoteWriteMetrics.for_registry(own)
    registry, _ = make_registry()
    sleeps = Sleeps()
    with RemoteWriteClient(receiver.url, timeout=0.2, sleep=sleeps) as client:
        request = WriteRequestEncoder().encode(registry.collect(), 1_700_000_000_000)[0]
        assert client.send(request, metrics=metrics) is SendOutcome.SENT
    assert len(receiver.received) == 2
    assert receiver.received[1].headers["retry-attempt"] == "1"
    assert samples_of(own, "qw_remote_write_requests_total", code="error") == 1
    assert samples_of(own, "qw_remote_write_requests_total", code="204") == 1
    assert samples_of(own, "qw_remote_write_samples_total", outcome="retried") == 3
    assert samples_of(own, "qw_remote_write_samples_total", outcome="sent") == 3
    assert samples_of(own, "qw_remote_write_last_success_timestamp_seconds") > 0


def test_retry_timeout_gives_up_and_counts_failed(receiver: Receiver) -> None:
    receiver.script = [Reply(503)] * 50
    now = [0.0]

    def sleep(delay: float) -> None:
        now[0] += delay

    registry, _ = make_registry()
    with RemoteWriteClient(receiver.url, sleep=sleep, clock=lambda: now[0]) as client:
        result = client.push(registry, retry_timeout=1.0)
    assert (result.sent, result.failed) == (0, 3)
    assert now[0] <= 1.0
    assert 4 <= len(receiver.received) < 50


class StepClock:
    """Wall clock for snapshots: each call is one interval later, so every sample is distinct."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return 1_700_000_000.0 + 15.0 * self.calls


def stamps_of(receiver: Receiver, name: str) -> list[int]:
    """Timestamps of the accepted samples of metric ``name``, in arrival order."""
    return [
        ts
        for r in receiver.accepted
        for labels, _, ts in r.series()
        if ("__name__", name) in labels
    ]


def _pusher(url: str, registry: CollectorRegistry, **kwargs: object) -> MetricsPusher:
    client = RemoteWriteClient(url, timeout=1.0, backoff=Backoff(initial=0.005, maximum=0.02))
    return MetricsPusher(client, registry, 0.02, {"job": "t"}, **kwargs)  # type: ignore[arg-type]


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _refused_port() -> int:
    """A loopback port a receiver listened on and no longer does: connections are refused."""
    down = Receiver()
    down.start()
    down.stop()
    return down.port


def test_backlog_from_an_outage_is_delivered_oldest_first() -> None:
    port = _refused_port()
    registry = CollectorRegistry()
    Gauge("rw_up", "up", registry=registry).set(1)
    clock = StepClock()
    pusher = _pusher(f"http://127.0.0.1:{port}/api/v1/write", registry, clock=clock)
    pusher.start()
    _wait_for(lambda: clock.calls >= 10)  # ten intervals without a receiver
    queued = samples_of(registry, "qw_remote_write_queue_length")
    assert queued >= 8
    back = Receiver(port=port)
    back.start()
    try:
        _wait_for(lambda: samples_of(registry, "qw_remote_write_queue_length") <= 1)
        pusher.stop(flush=True)
    finally:
        back.stop()
    stamps = stamps_of(back, "rw_up")
    taken = [int((1_700_000_000.0 + 15.0 * n) * 1000) for n in range(1, clock.calls + 1)]
    # Every snapshot, oldest first, none lost; then the staleness marker that ends the series.
    assert stamps == [*taken, taken[-1] + 1]
    assert samples_of(registry, "qw_remote_write_samples_total", outcome="dropped") == 0
    assert samples_of(registry, "qw_remote_write_samples_total", outcome="failed") == 0


def test_full_backlog_drops_the_oldest_and_counts_them() -> None:
    port = _refused_port()
    registry = CollectorRegistry()
    Gauge("rw_up", "up", registry=registry).set(1)
    clock = StepClock()
    pusher = _pusher(f"http://127.0.0.1:{port}/api/v1/write", registry, clock=clock, max_queued=3)
    pusher.start()
    _wait_for(lambda: clock.calls >= 10)
    back = Receiver(port=port)
    back.start()
    try:
        _wait_for(lambda: len(back.accepted) >= 4)
        pusher.stop(flush=True)
    finally:
        back.stop()
    taken = [int((1_700_000_000.0 + 15.0 * n) * 1000) for n in range(1, clock.calls + 1)]
    *delivered, stale = stamps_of(back, "rw_up")
    assert stale == taken[-1] + 1  # the final push ends the series
    assert delivered == sorted(delivered)
    assert taken[0] not in delivered  # the oldest went first
    assert delivered == taken[len(taken) - len(delivered) :]
    per_snapshot = len(back.accepted[0].series())
    lost = (len(taken) - len(delivered)) * per_snapshot
    dropped = samples_of(registry, "qw_remote_write_samples_total", outcome="dropped")
    assert dropped + samples_of(registry, "qw_remote_write_samples_total", outcome="failed") == (
        pytest.approx(lost, abs=per_snapshot)
    )
    assert dropped > 0


def test_stop_without_receiver_gives_up_after_flush_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = _refused_port()
    registry = CollectorRegistry()
    Gauge("rw_up", "up", registry=registry).set(1)
    pusher = _pusher(f"http://127.0.0.1:{port}/api/v1/write", registry, flush_timeout=0.2)
    with caplog.at_level(logging.ERROR):
        started = time.monotonic()
        with pusher:
            time.sleep(0.1)
        assert time.monotonic() - started < 3.0
    assert samples_of(registry, "qw_remote_write_samples_total", outcome="failed") > 0
    assert samples_of(registry, "qw_remote_write_queue_length") == 0
    assert "unsent" in caplog.text


def test_a_rejection_body_is_cut_to_200_characters_without_credentials(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    token = "glc_s3cr3t-T0ken"
    echoed = (
        f'{{"error": "bad request", "headers": {{"Authorization": "Bearer {token}"}}, '
        f'"auth": "basic dXNlcjpwYXNz", "note": "{token}"}}' + "x" * 400
    )
    receiver.script = [Reply(400, body=echoed.encode())]
    registry, _ = make_registry()
    with RemoteWriteClient(receiver.url, auth=BearerAuth(token)) as client:
        request = WriteRequestEncoder().encode(registry.collect(), 1_700_000_000_000)[0]
        assert client.send(request) is SendOutcome.DROPPED
    (record,) = [r for r in caplog.records if "rejected with HTTP 400" in r.getMessage()]
    logged = str(record.args[-1])  # type: ignore[index]
    assert len(logged) == 200
    assert token not in caplog.text
    assert "dXNlcjpwYXNz" not in caplog.text
    assert logged.startswith('{"error": "bad request", "headers": {"Authorization": "<redacted>')


def test_a_failing_receiver_is_logged_once_and_its_recovery_once(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = [Reply(503)] * 12
    caplog.set_level(logging.INFO, logger="qw_metrics.remote_write")
    registry, _ = make_registry()
    with RemoteWriteClient(receiver.url, sleep=Sleeps()) as client:
        request = WriteRequestEncoder().encode(registry.collect(), 1_700_000_000_000)[0]
        assert client.send(request) is SendOutcome.SENT
        assert client.send(request) is SendOutcome.SENT  # healthy now: nothing more is logged
    messages = [r.getMessage() for r in caplog.records if r.name == "qw_metrics.remote_write"]
    assert len(messages) == 2
    assert "failing (HTTP 503)" in messages[0]
    assert "recovered after 12 failed attempts" in messages[1]


def test_metadata_goes_with_the_first_snapshot_then_every_ten_minutes(
    receiver: Receiver,
) -> None:
    registry = CollectorRegistry()
    Gauge("rw_meta_level", "Level of the thing.", registry=registry).set(1)
    clock = StepClock()  # 15 s per snapshot: 40 snapshots are 10 minutes
    pusher = _pusher(receiver.url, registry, clock=clock)
    pusher.start()
    _wait_for(lambda: clock.calls >= 45, timeout=20.0)
    pusher.stop(flush=True)
    with_metadata = [
        i for i, r in enumerate(receiver.accepted) if any(m.help for m in r.request.metadata)
    ]
    assert len(with_metadata) >= 2
    first = receiver.accepted[with_metadata[0]].request
    assert ("rw_meta_level", "Level of the thing.") in {
        (m.metric_family_name, m.help) for m in first.metadata
    }
    assert list(first.timeseries) == []  # a request of its own, after the snapshot's samples
    # Between the two sends, 40 snapshots of samples only (the 41st's samples come first).
    between = receiver.accepted[with_metadata[0] + 1 : with_metadata[1]]
    assert all(r.request.timeseries and not r.request.metadata for r in between)
    assert len(between) == 40


def _backlog_while_down(**kwargs: object) -> tuple[CollectorRegistry, MetricsPusher]:
    """A pusher whose receiver is down after ten snapshots, 100 series each."""
    registry = CollectorRegistry()
    gauge = Gauge("rw_many", "many", ["n"], registry=registry)
    for n in range(100):
        gauge.labels(str(n)).set(n)
    pusher = _pusher(f"http://127.0.0.1:{_refused_port()}/api/v1/write", registry, **kwargs)
    pusher.start()
    _wait_for(lambda: kwargs["clock"].calls >= 10)  # type: ignore[attr-defined]
    return registry, pusher


def test_the_backlog_is_bounded_in_bytes() -> None:
    # Issue 18: bounded only in snapshots, a 1 ms interval grew the backlog ~2 MB/s.
    clock = StepClock()
    registry, pusher = _backlog_while_down(clock=clock, max_queued=1_000, max_queued_bytes=1)
    try:
        assert samples_of(registry, "qw_remote_write_queue_length") == 1  # always the newest
        assert samples_of(registry, "qw_remote_write_samples_total", outcome="dropped") > 0
    finally:
        pusher.stop(flush=False)


def test_the_backlog_is_bounded_in_age() -> None:
    class HourClock(StepClock):
        def __call__(self) -> float:
            self.calls += 1
            return 1_700_000_000.0 + 300.0 * self.calls  # five minutes per snapshot

    clock = HourClock()
    registry, pusher = _backlog_while_down(clock=clock, max_queued=1_000)
    try:
        # Ten minutes at most: the newest snapshot and the two before it.
        assert samples_of(registry, "qw_remote_write_queue_length") <= 3
        assert samples_of(registry, "qw_remote_write_samples_total", outcome="dropped") > 0
    finally:
        pusher.stop(flush=False)
