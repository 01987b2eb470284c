"""The served dashboard: waitress, Dash callbacks over HTTP, /metrics and /health."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from quotewatch.dashboard.app import DashboardOptions
from quotewatch.dashboard.serving import DashboardServer, serve
from quotewatch.probes import feed_health
from quotewatch.state import FeedStatus, Snapshot, StateStore
from support.dash_client import call, callback_request
from support.dashboard_state import product_state


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> StateStore:
    store = StateStore()
    store.update_product(
        product_state(now=clock.now, step=4), FeedStatus("local", True, 10, clock.now, "")
    )
    return store


@pytest.fixture
def server(store: StateStore, clock: Clock) -> Iterator[DashboardServer]:
    handle = serve(store, port=0, options=DashboardOptions(sample_interval=0.05), clock=clock)
    yield handle
    handle.stop()


def test_health_is_200_while_fresh_and_503_with_the_reason_when_stale(
    server: DashboardServer, clock: Clock
) -> None:
    with httpx.Client(base_url=server.url) as client:
        fresh = client.get("/health")
        assert fresh.status_code == 200
        assert fresh.json()["status"] == "ok"
        clock.now += 12
        stale = client.get("/health")
    assert stale.status_code == 503
    assert stale.json()["reason"] == "no feed message for 12.0 s (limit 5 s)"
    assert stale.json()["feed"] == {"source": "local", "connected": True, "messages": 10}


def test_health_before_any_message() -> None:
    ok, reason = feed_health(Snapshot.empty(), time.time(), 5.0)
    assert (ok, reason) == (False, "no feed message processed yet")


def test_metrics_route_serves_prometheus_text_with_dashboard_metrics(
    server: DashboardServer,
) -> None:
    with httpx.Client(base_url=server.url) as client:
        body = callback_request(client, "mid-value", {"live-interval.n_intervals": 1})
        call(client, body)
        reply = client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=")
    lines = reply.text.splitlines()
    assert any(line.startswith("dashboard_callbacks_total ") for line in lines)
    assert any(line.startswith("dashboard_update_age_seconds ") for line in lines)


def test_live_callback_over_http_reads_the_current_snapshot(
    server: DashboardServer, store: StateStore, clock: Clock
) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert "quotewatch" in client.get("/").text
        body = callback_request(client, "mid-value", {"live-interval.n_intervals": 1})
        before = call(client, body)
        newer = product_state(now=clock.now, step=40)
        store.update_product(newer)
        after = call(client, body)
    assert before["mid-value"]["children"] != after["mid-value"]["children"]
    assert after["mid-value"]["children"] == f"{newer.mid:,.2f}"
    assert after["candles-chart"]["figure"]["data"][0]["type"] == "candlestick"


def test_health_callback_fills_charts_from_sampled_metrics(
    server: DashboardServer, clock: Clock
) -> None:
    with httpx.Client(base_url=server.url) as client:
        body = callback_request(client, "health-dashboard-chart", {})
        live = callback_request(client, "mid-value", {})
        for _ in range(3):  # render between scrapes so the dashboard's own metrics move
            call(client, live)
            clock.now += 1
            time.sleep(0.12)
        out = call(client, body)
    assert len(server.dashboard.sampler.history) >= 3
    traces = {t["name"] for t in out["health-dashboard-chart"]["figure"]["data"]}
    assert "staleness" in traces


def test_stop_closes_the_port(store: StateStore) -> None:
    handle = serve(store, port=0)
    port = handle.port
    assert handle.url == f"http://127.0.0.1:{port}"
    handle.stop()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_options_reject_non_positive_values() -> None:
    with pytest.raises(ValueError, match=r"stale_after must be > 0, got 0"):
        DashboardOptions(stale_after=0)
