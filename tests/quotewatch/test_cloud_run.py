"""Cloud Run conventions: PORT and K_SERVICE in the settings, JSON logs, the two probes."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from quotewatch.app.metrics_server import MetricsServer
from quotewatch.config import ConfigError, Settings
from quotewatch.logs import CloudLoggingFormatter, configure_logging
from quotewatch.probes import liveness, readiness
from quotewatch.state import FeedStatus, Snapshot, StateStore
from support.dashboard_state import product_state


@pytest.mark.parametrize(
    ("flag", "environ", "expected"),
    [
        (None, {}, 8050),
        (None, {"PORT": "8080"}, 8080),
        (None, {"PORT": "8080", "QW_PORT": "9000"}, 9000),
        ("7000", {"PORT": "8080", "QW_PORT": "9000"}, 7000),
        (None, {"PORT": ""}, 8050),
    ],
)
def test_port_is_flag_then_qw_port_then_port_then_default(
    flag: str | None, environ: dict[str, str], expected: int
) -> None:
    import argparse

    settings = Settings.resolve(argparse.Namespace(port=flag), environ)
    assert settings.port == expected


@pytest.mark.parametrize("value", ["99999", "-1", "http"])
def test_an_impossible_port_is_a_config_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match=rf"PORT={value!r}"):
        Settings.resolve(environ={"PORT": value})


def test_host_is_loopback_locally_and_every_interface_on_cloud_run() -> None:
    assert Settings.resolve(environ={}).host == "127.0.0.1"
    assert Settings.resolve(environ={"K_SERVICE": "quotewatch-btc"}).host == "0.0.0.0"
    explicit = {"K_SERVICE": "quotewatch-btc", "QW_HOST": "127.0.0.2"}
    assert Settings.resolve(environ=explicit).host == "127.0.0.2"


def test_environment_variables_list_both_port_names() -> None:
    names = Settings.environment_variables()
    assert names.index("QW_PORT") + 1 == names.index("PORT")
    assert "GRAFANA_API_KEY" in names


def _record(msg: str, level: int = logging.WARNING, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    record = logging.LogRecord("quotewatch.ingest", level, __file__, 1, msg, ("x",), exc_info)
    record.created = 1_780_000_000.25
    return record


def test_cloud_logging_lines_are_one_json_object_with_severity_message_logger_time() -> None:
    line = CloudLoggingFormatter().format(_record("gap in %s"))
    assert "\n" not in line
    assert json.loads(line) == {
        "severity": "WARNING",
        "message": "gap in x",
        "logger": "quotewatch.ingest",
        "time": "2026-05-28T20:26:40.250000+00:00",
    }
    with_traceback = json.loads(CloudLoggingFormatter().format(_record("failed %s", exc=True)))
    assert with_traceback["message"].startswith("failed x\nTraceback")
    assert "ValueError: bad value" in with_traceback["message"]


def test_configure_logging_picks_json_on_cloud_run_only() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        root.handlers = []
        configure_logging(environ={"K_SERVICE": "svc"})
        assert isinstance(root.handlers[0].formatter, CloudLoggingFormatter)
        root.handlers = []
        configure_logging(verbose=True, environ={})
        formatter = root.handlers[0].formatter
        assert formatter is not None
        assert not isinstance(formatter, CloudLoggingFormatter)
        assert root.level == logging.DEBUG
    finally:
        root.handlers, level = saved
        root.setLevel(level)


def test_httpx_logs_no_line_per_metrics_push() -> None:
    httpx_log = logging.getLogger("httpx")
    root = logging.getLogger()
    saved = root.handlers[:], root.level, httpx_log.level
    try:
        root.handlers = []
        configure_logging(environ={})
        assert not httpx_log.isEnabledFor(logging.INFO)
        assert httpx_log.isEnabledFor(logging.WARNING)
    finally:
        root.handlers, level, httpx_level = saved
        root.setLevel(level)
        httpx_log.setLevel(httpx_level)


def test_job_and_runbook_base_url_come_from_the_environment() -> None:
    defaults = Settings.resolve(environ={})
    assert defaults.job == "quotewatch"
    assert defaults.runbook_base_url.startswith("https://")
    settings = Settings.resolve(
        environ={"QW_JOB": "qw-eu", "QW_RUNBOOK_BASE_URL": "https://wiki.example/qw"}
    )
    assert (settings.job, settings.runbook_base_url) == ("qw-eu", "https://wiki.example/qw")
    assert {"QW_JOB", "QW_RUNBOOK_BASE_URL"} <= set(Settings.environment_variables())


def _snapshot(connected: bool, last: float | None) -> Snapshot:
    return Snapshot(time.time(), {}, FeedStatus("exchange", connected, 3, last, ""))


def test_readiness_waits_for_the_feed_and_for_storage() -> None:
    now = time.time()
    status, body = readiness(_snapshot(False, None), lambda: True)
    assert (status, json.loads(body)["reason"]) == (503, "feed not connected yet")
    status, body = readiness(_snapshot(True, now), lambda: False)
    assert status == 503
    assert json.loads(body)["storage"] == "opening"
    status, body = readiness(_snapshot(True, now), lambda: True)
    assert (status, json.loads(body)["status"]) == (200, "ready")
    status, body = readiness(_snapshot(True, now), None)
    assert (status, json.loads(body)["storage"]) == (200, "off")


def test_liveness_is_503_once_the_feed_is_stale() -> None:
    now = time.time()
    assert liveness(_snapshot(True, now - 1), now)[0] == 200
    status, body = liveness(_snapshot(True, now - 6), now)
    assert status == 503
    assert json.loads(body)["reason"] == "no feed message for 6.0 s (limit 5 s)"


def test_the_bare_metrics_server_answers_both_probes_and_metrics() -> None:
    store = StateStore()
    opened = {"storage": False}
    server = MetricsServer("127.0.0.1", 0, store, lambda: opened["storage"])
    try:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/ready").status_code == 503
            assert client.get("/health").status_code == 503
            now = time.time()
            store.update_product(
                product_state(now=now, step=1), FeedStatus("exchange", True, 1, now, "")
            )
            assert client.get("/ready").status_code == 503
            opened["storage"] = True
            ready = client.get("/ready")
            assert (ready.status_code, ready.json()["status"]) == (200, "ready")
            assert client.get("/health").json()["status"] == "ok"
            assert b"# TYPE" in client.get("/metrics").content
            assert client.get("/other").status_code == 404
    finally:
        server.stop()
