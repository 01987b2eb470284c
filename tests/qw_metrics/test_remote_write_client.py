"""Client construction, auth headers, secrets hygiene and MetricsPusher.from_env."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from qw_metrics import (
    BasicAuth,
    BearerAuth,
    MetricsPusher,
    RemoteWriteClient,
    RemoteWriteConfigError,
)
from qw_metrics.remote_write import Backoff

SECRET = "glc_eyJzZWNyZXQiOiJkbyBub3QgbGVhayJ9"


class Recorder:
    """Loopback receiver answering a fixed status and recording request headers."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.headers: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                recorder.headers.append({k.lower(): v for k, v in self.headers.items()})
                status = recorder.statuses.pop(0) if recorder.statuses else 204
                body = b"denied"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/prom/push"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder([])
    yield rec
    rec.close()


def gauge_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("rw_g", "g", registry=registry).set(1)
    return registry


@pytest.mark.parametrize(
    "header",
    ["Content-Type", "content-encoding", "USER-AGENT", "X-Prometheus-Remote-Write-Version"],
)
def test_protocol_headers_cannot_be_overridden(header: str) -> None:
    with pytest.raises(RemoteWriteConfigError, match=f"header {header!r}"):
        RemoteWriteClient("http://127.0.0.1:9/api/v1/write", headers={header: "x"})


def test_auth_header_clash_is_refused() -> None:
    with pytest.raises(RemoteWriteConfigError, match="authorization"):
        RemoteWriteClient(
            "http://127.0.0.1:9/w", auth=BearerAuth(SECRET), headers={"Authorization": "x"}
        )


@pytest.mark.parametrize(
    "url", ["ftp://host/push", "127.0.0.1:9090/api/v1/write", f"https://1234:{SECRET}@host/push"]
)
def test_bad_urls_are_refused_without_echoing_secrets(url: str) -> None:
    with pytest.raises(RemoteWriteConfigError) as info:
        RemoteWriteClient(url)
    assert SECRET not in str(info.value)


def test_auth_and_tenant_headers_reach_the_receiver(recorder: Recorder) -> None:
    with RemoteWriteClient(recorder.url, auth=BasicAuth("123456", SECRET)) as client:
        client.push(gauge_registry())
    with RemoteWriteClient(recorder.url, auth=BearerAuth(SECRET), tenant="team-a") as client:
        client.push(gauge_registry())
    basic, bearer = recorder.headers
    assert basic["authorization"] == "Basic " + base64.b64encode(
        f"123456:{SECRET}".encode()
    ).decode("ascii")
    assert "x-scope-orgid" not in basic
    assert bearer["authorization"] == f"Bearer {SECRET}"
    assert bearer["x-scope-orgid"] == "team-a"


def test_secrets_stay_out_of_reprs_logs_errors_and_metrics(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder.statuses = [500, 401]
    registry = gauge_registry()
    client = RemoteWriteClient(
        f"{recorder.url}",
        auth=BasicAuth("123456", SECRET),
        headers={"X-Api-Key": SECRET},
        backoff=Backoff(initial=0.001, maximum=0.001),
    )
    pusher = MetricsPusher(client, registry, interval=0.05, external_labels={"job": "t"})
    with pusher:
        pass
    texts = [
        repr(client),
        str(client),
        repr(pusher),
        repr(BasicAuth("u", SECRET)),
        str(BasicAuth("u", SECRET)),
        repr(BearerAuth(SECRET)),
        caplog.text,
        generate_latest(registry).decode(),
    ]
    for bad in (f"{SECRET}\n", f"x{SECRET}\x00"):
        for make in (lambda s: BasicAuth("u", s), BearerAuth):
            with pytest.raises(RemoteWriteConfigError) as info:
                make(bad)
            texts.append(str(info.value))
    assert "HTTP 401" in caplog.text  # the failure was logged...
    for text in texts:
        assert SECRET not in text  # ...without the secret
    assert "123456" in repr(client)
    dropped = registry.get_sample_value("qw_remote_write_samples_total", {"outcome": "dropped"})
    assert dropped is not None
    assert dropped > 0


def test_from_env_without_url_is_disabled_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="qw_metrics.remote_write")
    registry = CollectorRegistry()
    pusher = MetricsPusher.from_env(registry=registry, environ={"GRAFANA_API_KEY": SECRET})
    assert not pusher.enabled
    with pusher:
        pass
    pusher.stop()
    assert [r.getMessage() for r in caplog.records] == [
        "remote write disabled: GRAFANA_PUSH_URL is not set"
    ]
    assert list(registry.collect()) == []


def test_from_env_builds_basic_or_bearer_auth_and_labels() -> None:
    env = {
        "GRAFANA_PUSH_URL": "https://prometheus-prod-01-eu-west-0.grafana.net/api/prom/push",
        "GRAFANA_USER": "123456",
        "GRAFANA_API_KEY": SECRET + "\n",  # tokens read from files end in a newline
        "QW_PUSH_INTERVAL": "30",
    }
    pusher = MetricsPusher.from_env(job="quotewatch", registry=CollectorRegistry(), environ=env)
    assert pusher.enabled
    assert pusher.interval == 30.0
    assert pusher.max_queued == 20  # ten minutes of 30 s pushes
    assert "BasicAuth(username='123456'" in repr(pusher)
    labels = pusher._encoder._external
    assert labels["job"] == "quotewatch"
    assert labels["environment"] == "local"
    assert labels["instance"]

    env = {"GRAFANA_PUSH_URL": env["GRAFANA_PUSH_URL"], "GRAFANA_API_KEY": SECRET}
    env["ENVIRONMENT"] = "prod"
    pusher = MetricsPusher.from_env(registry=CollectorRegistry(), environ=env)
    assert "BearerAuth" in repr(pusher)
    assert pusher.interval == 15.0
    assert pusher._encoder._external["environment"] == "prod"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QW_PUSH_INTERVAL": "soon"}, "QW_PUSH_INTERVAL='soon'"),
        ({"QW_PUSH_INTERVAL": "-1"}, "interval=-1.0"),
        ({"GRAFANA_USER": "123"}, "GRAFANA_API_KEY is empty"),
    ],
)
def test_from_env_rejects_bad_settings(env: dict[str, str], message: str) -> None:
    env = {"GRAFANA_PUSH_URL": "https://example.invalid/api/prom/push", **env}
    with pytest.raises(RemoteWriteConfigError, match=message):
        MetricsPusher.from_env(registry=CollectorRegistry(), environ=env)
