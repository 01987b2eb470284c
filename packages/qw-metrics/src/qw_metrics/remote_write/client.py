"""HTTP client that POSTs remote-write requests and retries them as the spec says."""

from __future__ import annotations

import enum
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry

from qw_metrics.errors import RemoteWriteConfigError
from qw_metrics.remote_write.auth import Auth
from qw_metrics.remote_write.collect import read_registry
from qw_metrics.remote_write.encode import EncodedRequest, WriteRequestEncoder
from qw_metrics.remote_write.metrics import RemoteWriteMetrics
from qw_metrics.remote_write.retry import Backoff, is_retryable, parse_retry_after

log = logging.getLogger("qw_metrics.remote_write")

try:
    _VERSION = version("qw-metrics")
except PackageNotFoundError:  # running from a source tree without metadata
    _VERSION = "0"

USER_AGENT = f"qw-metrics/{_VERSION}"
PROTOCOL_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": USER_AGENT,
}
# Set by the client itself; a user header with one of these names is refused.
_RESERVED = {name.lower() for name in PROTOCOL_HEADERS} | {"retry-attempt"}
# Enough of an error body to say why; receivers can echo request headers back in it.
_MAX_ERROR_BODY = 200
# A credential as it could appear in an echoed error body: the header, or the scheme and token.
_CREDENTIAL = re.compile(
    r"(?i)((?:authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic)\s+)?|\b(?:bearer|basic)\s+)"
    r"[^\s\"',;]+"
)


class SendOutcome(enum.Enum):
    """What became of one request."""

    SENT = "sent"
    DROPPED = "dropped"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the caller's cancel event was set; the caller counts the samples


@dataclass(frozen=True, slots=True)
class PushResult:
    """Sample counts of one :meth:`RemoteWriteClient.push`."""

    sent: int = 0
    dropped: int = 0
    failed: int = 0


def _safe_url(url: str) -> str:
    """scheme://host[:port]/path; user info and query strings may hold secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise RemoteWriteConfigError(
            "remote-write URL cannot be parsed; pass e.g. https://host/api/prom/push"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteWriteConfigError(
            f"remote-write URL {_safe_url(url)!r} must be http:// or https:// with a host, "
            "e.g. https://prometheus-prod-01-eu-west-0.grafana.net/api/prom/push"
        )
    if parts.username is not None or parts.password is not None:
        raise RemoteWriteConfigError(
            f"remote-write URL {_safe_url(url)!r} carries credentials; "
            "pass them as auth=BasicAuth(...) instead"
        )


class RemoteWriteClient:
    """Sends registries to a Prometheus Remote Write 1.0 receiver (Prometheus, Mimir, Grafana
    Cloud). Thread-safe; close it (or use ``with``) to release connections."""

    def __init__(
        self,
        url: str,
        *,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
        tenant: str | None = None,
        timeout: float = 30.0,
        verify: bool | ssl.SSLContext = True,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_url(url)
        if not timeout > 0:
            raise RemoteWriteConfigError(f"timeout={timeout!r}; pass a positive number of seconds")
        extra = dict(headers or {})
        for name in extra:
            if name.lower() in _RESERVED:
                raise RemoteWriteConfigError(
                    f"header {name!r} is set by the remote-write protocol and cannot be "
                    "overridden; remove it from headers"
                )
        owned: dict[str, str] = {}
        if auth is not None:
            owned.update(auth.headers())
        if tenant is not None:
            if not tenant or any(ord(ch) < 0x20 for ch in tenant):
                raise RemoteWriteConfigError(
                    f"tenant={tenant!r}; pass the Mimir tenant ID (X-Scope-OrgID) as a str"
                )
            owned["X-Scope-OrgID"] = tenant
        clashes = {n.lower() for n in extra} & {n.lower() for n in owned}
        if clashes:
            raise RemoteWriteConfigError(
                f"headers {sorted(clashes)} are already set by auth/tenant; remove them from "
                "headers"
            )
        self.url = url
        self._auth = auth
        self._tenant = tenant
        self._header_names = sorted(extra)
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            headers={**extra, **owned, **PROTOCOL_HEADERS},
            timeout=timeout,
            verify=verify,
            follow_redirects=False,
        )
        self._encoders: dict[tuple[tuple[str, str], ...], WriteRequestEncoder] = {}
        self._push_lock = threading.Lock()
        # Every credential value sent, and its parts (a token after "Basic "/"Bearer "), to be
        # cut out of anything logged.
        self._secrets = sorted(
            {part for value in owned.values() for part in (value, value.split(" ")[-1])},
            key=len,
            reverse=True,
        )
        # (first failure time, failed attempts) while the receiver fails, for one log line
        # when it starts failing and one when it recovers.
        self._failing: tuple[float, int] | None = None
        self._failing_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"RemoteWriteClient(url={_safe_url(self.url)!r}, auth={self._auth!r}, "
            f"tenant={self._tenant!r}, headers={self._header_names!r})"
        )

    def __enter__(self) -> RemoteWriteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def push(
        self,
        registry: CollectorRegistry,
        *,
        external_labels: Mapping[str, str] | None = None,
        timestamp_ms: int | None = None,
        retry_timeout: float | None = None,
    ) -> PushResult:
        """Collect ``registry`` now and send it, retrying until accepted, rejected, or (when
        ``retry_timeout`` seconds is given) out of time. Blocks; see MetricsPusher for the
        background version."""
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        key = tuple(sorted((external_labels or {}).items()))
        with self._push_lock:
            encoder = self._encoders.get(key)
            if encoder is None:
                encoder = self._encoders[key] = WriteRequestEncoder(dict(key))
            requests = encoder.encode(read_registry(registry), timestamp_ms)
        deadline = None if retry_timeout is None else self._clock() + retry_timeout
        counts = dict.fromkeys(SendOutcome, 0)
        for request in requests:
            counts[self.send(request, deadline=deadline)] += request.samples
        return PushResult(
            sent=counts[SendOutcome.SENT],
            dropped=counts[SendOutcome.DROPPED],
            failed=counts[SendOutcome.FAILED],
        )

    def send(
        self,
        request: EncodedRequest,
        *,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
        metrics: RemoteWriteMetrics | None = None,
    ) -> SendOutcome:
        """POST one encoded request. Network errors, 5xx and 429 are retried with backoff (or
        ``Retry-After``) until success, ``cancel`` is set (-> CANCELLED, samples not counted),
        or the ``deadline`` (on ``clock``) would pass (-> FAILED); other statuses drop it."""
        attempt = 0
        while True:
            if cancel is not None and cancel.is_set():
                return SendOutcome.CANCELLED
            headers = {"Retry-Attempt": str(attempt)} if attempt else None
            started = time.perf_counter()
            retry_after = None
            try:
                response = self._http.post(self.url, content=request.body, headers=headers)
            except httpx.TransportError as exc:
                code = "error"
                reason = f"{type(exc).__name__}: {exc}"
            else:
                code = str(response.status_code)
                reason = f"HTTP {response.status_code}"
            if metrics is not None:
                metrics.requests.labels(code).inc()
                metrics.request_duration.observe(time.perf_counter() - started)
            if code != "error":
                status = response.status_code
                if 200 <= status <= 299:
                    if metrics is not None:
                        metrics.samples.labels("sent").inc(request.samples)
                        metrics.last_success.set(time.time())
                    self._recovered()
                    return SendOutcome.SENT
                if not is_retryable(status):
                    log.error(
                        "remote write to %s rejected with HTTP %d; dropping %d samples; "
                        "response body: %r",
                        _safe_url(self.url),
                        status,
                        request.samples,
                        self._redacted(response.content),
                    )
                    if metrics is not None:
                        metrics.samples.labels("dropped").inc(request.samples)
                    return SendOutcome.DROPPED
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            attempt += 1
            delay = self._backoff.delay(attempt) if retry_after is None else retry_after
            if deadline is not None and self._clock() + delay > deadline:
                return self._give_up(request, metrics, f"retry deadline reached after {reason}")
            self._failed(reason)
            if metrics is not None:
                metrics.samples.labels("retried").inc(request.samples)
            self._wait(delay, cancel)

    def _failed(self, reason: str) -> None:
        """Log the first of a run of failures only: retries go on quietly until recovery."""
        with self._failing_lock:
            first = self._failing is None
            since, attempts = self._failing or (time.monotonic(), 0)
            self._failing = (since, attempts + 1)
        if first:
            log.warning(
                "remote write to %s failing (%s); retrying with backoff, logged again when it "
                "recovers",
                _safe_url(self.url),
                self._redacted(reason.encode()),
            )

    def _recovered(self) -> None:
        with self._failing_lock:
            failing, self._failing = self._failing, None
        if failing is not None:
            log.warning(
                "remote write to %s recovered after %d failed attempts over %.1f s",
                _safe_url(self.url),
                failing[1],
                time.monotonic() - failing[0],
            )

    def _redacted(self, body: bytes) -> str:
        """`body` as text, cut to 200 characters, with credentials taken out."""
        text = body[: 20 * _MAX_ERROR_BODY].decode("utf-8", "replace")
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return _CREDENTIAL.sub(lambda m: m[1] + "<redacted>", text)[:_MAX_ERROR_BODY]

    def _wait(self, delay: float, cancel: threading.Event | None) -> None:
        if self._sleep is not None:
            self._sleep(delay)
        elif cancel is not None:
            cancel.wait(delay)
        else:
            time.sleep(delay)

    def _give_up(
        self, request: EncodedRequest, metrics: RemoteWriteMetrics | None, why: str
    ) -> SendOutcome:
        log.error(
            "remote write to %s gave up on %d samples: %s",
            _safe_url(self.url),
            request.samples,
            why,
        )
        if metrics is not None:
            metrics.samples.labels("failed").inc(request.samples)
        return SendOutcome.FAILED
