"""The dashboard in headless Chromium: live numbers move, health charts fill, staleness shows."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from quotewatch.dashboard.app import DashboardOptions
from quotewatch.dashboard.serving import DashboardServer, serve
from quotewatch.metrics import EVENT_LOOP_LAG, MESSAGE_LATENCY, MESSAGES_RECEIVED
from quotewatch.state import StateStore
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from support.dashboard_state import StoreDriver

SCREENSHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


class MetricsDriver(StoreDriver):
    """A StoreDriver that also moves a few pipeline metrics, as the real pipeline would."""

    def _run(self) -> None:
        feeder = threading.Thread(target=super()._run, daemon=True)
        feeder.start()
        while not self._stop.wait(0.05):
            MESSAGES_RECEIVED.labels("l2update").inc(20)
            MESSAGES_RECEIVED.labels("match").inc(2)
            MESSAGE_LATENCY.observe(0.0004)
            EVENT_LOOP_LAG.observe(0.0012)
        feeder.join()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    profile = tempfile.TemporaryDirectory(prefix="qw-chromium-")
    options.add_argument(f"--user-data-dir={profile.name}")
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        profile.cleanup()


@pytest.fixture
def running() -> Iterator[tuple[DashboardServer, StoreDriver]]:
    store = StateStore()
    feed = MetricsDriver(store, ("BTC-USD", "ETH-USD"), hz=5).start()
    options = DashboardOptions(
        live_interval_ms=500, health_interval_ms=1000, sample_interval=0.25, rate_window=2.0
    )
    server = serve(store, port=0, options=options)
    try:
        yield server, feed
    finally:
        feed.stop()
        server.stop()


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def traces(driver: webdriver.Chrome, graph_id: str) -> int:
    # dcc.Graph renders a plotly div that keeps its traces in `.data`.
    count = driver.execute_script(
        "const g = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return g && g.data ? g.data.filter(t => (t.x || []).length > 0).length : 0;",
        f"#{graph_id}",
    )
    return int(count)


@pytest.mark.chromium
def test_pages_update_fill_and_warn_when_stale(
    browser: webdriver.Chrome, running: tuple[DashboardServer, StoreDriver]
) -> None:
    server, feed = running
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, 10, poll_frequency=0.1)

    browser.get(server.url + "/")
    wait.until(lambda d: text(d, "mid-value") not in ("", "—"))
    first = text(browser, "mid-value")
    WebDriverWait(browser, 5, poll_frequency=0.1).until(lambda d: text(d, "mid-value") != first)
    assert not browser.find_element(By.ID, "staleness-warning").is_displayed()
    assert browser.find_element(By.ID, "product-select-wrap").is_displayed()
    wait.until(lambda d: traces(d, "candles-chart") >= 1)
    browser.save_screenshot(str(SCREENSHOTS / "live.png"))

    browser.find_element(By.ID, "nav-health").click()
    wait.until(lambda d: traces(d, "health-msg-rate-chart") >= 2)
    wait.until(lambda d: traces(d, "health-latency-chart") >= 1)
    wait.until(lambda d: traces(d, "health-dashboard-chart") >= 1)
    assert text(browser, "health-msg-rate-value").endswith("/s")
    assert text(browser, "health-msg-rate-value") != "0.0/s"
    browser.save_screenshot(str(SCREENSHOTS / "health.png"))

    browser.find_element(By.ID, "nav-live").click()
    wait.until(lambda d: text(d, "mid-value") not in ("", "—"))
    feed.stop()
    WebDriverWait(browser, 10, poll_frequency=0.2).until(
        lambda d: d.find_element(By.ID, "staleness-warning").is_displayed()
    )
    assert text(browser, "staleness-warning").startswith("Stale: no update for")
    browser.save_screenshot(str(SCREENSHOTS / "live-stale.png"))
