"""The dashboard in headless Chromium against a real pipeline fed by the simulated exchange.

The first test runs a real `quotewatch run --no-storage` process (pipeline + dashboard, as in
the demo) connected over loopback to the simulated exchange (`LocalExchange`), which the test
runs in a thread. Stopping the exchange stops the feed while the dashboard keeps serving, which
is what the staleness warning is for. (`quotewatch demo` runs its exchange inside the app
process, so its feed cannot be stopped without stopping the page too.)

The second runs `quotewatch demo` itself, storage included, dropping trades at the source, and
opens both pages after 30 s: every health chart must show data, except the remote-write one,
which says remote write is off (no push URL is set).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from quotewatch.dashboard.health import CHARTS
from quotewatch.simulate.server import LocalExchange
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SCREENSHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"
PRODUCTS = "BTC-USD,ETH-USD"
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
CLI = "import sys; from quotewatch.cli import main; sys.exit(main())"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quotewatch(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-u", "-c", CLI, *args], stdout=out, stderr=subprocess.STDOUT
        )


def wait_for(check: object, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} not ready after {timeout:.0f} s; its output:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class ExchangeThread:
    """The simulated exchange on its own event loop in a thread, until `stop()`."""

    def __init__(self) -> None:
        self.url = ""
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        async with LocalExchange(PRODUCTS.split(","), seed=3) as exchange:
            self.url = exchange.exchange_url
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.05)

    def start(self) -> ExchangeThread:
        self._thread.start()
        assert self._ready.wait(15), "the simulated exchange did not start"
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def feed_and_app(tmp_path: Path) -> Iterator[tuple[ExchangeThread, str]]:
    exchange = ExchangeThread().start()
    app_port = free_port()
    app_log = tmp_path / "run.log"
    app = quotewatch(
        "run",
        "--url", exchange.url,
        "--products", PRODUCTS,
        "--no-storage",
        "--data-dir", str(tmp_path / "data"),
        "--port", str(app_port),
        log=app_log,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{app_port}"
        # Importing the whole app takes a while on a busy machine.
        wait_for(
            lambda: httpx.get(url + "/health", timeout=1).status_code == 200,
            "the app",
            app_log,
            timeout=60,
        )
        yield exchange, url
    finally:
        exchange.stop()
        stop(app)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


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
def test_pages_update_fill_and_warn_when_the_feed_stops(
    browser: webdriver.Chrome, feed_and_app: tuple[ExchangeThread, str]
) -> None:
    exchange, url = feed_and_app
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, 15, poll_frequency=0.1)

    browser.get(url + "/")
    wait.until(lambda d: text(d, "mid-value") not in ("", "—"))
    first = text(browser, "mid-value"), text(browser, "last-update")
    WebDriverWait(browser, 5, poll_frequency=0.1).until(
        lambda d: (text(d, "mid-value"), text(d, "last-update")) != first
    )
    assert not browser.find_element(By.ID, "staleness-warning").is_displayed()
    assert browser.find_element(By.ID, "product-select-wrap").is_displayed()
    wait.until(lambda d: traces(d, "candles-chart") >= 1)
    browser.save_screenshot(str(SCREENSHOTS / "live.png"))

    browser.find_element(By.ID, "nav-health").click()
    wait.until(lambda d: traces(d, "health-msg-rate-chart") >= 2)
    wait.until(lambda d: traces(d, "health-latency-chart") >= 1)
    wait.until(lambda d: traces(d, "health-stages-chart") >= 1)
    assert text(browser, "health-msg-rate-value").endswith("/s")
    assert text(browser, "health-msg-rate-value") != "0.0/s"
    browser.save_screenshot(str(SCREENSHOTS / "health.png"))

    browser.find_element(By.ID, "nav-live").click()
    wait.until(lambda d: text(d, "mid-value") not in ("", "—"))
    exchange.stop()
    WebDriverWait(browser, 15, poll_frequency=0.2).until(
        lambda d: d.find_element(By.ID, "staleness-warning").is_displayed()
    )
    assert text(browser, "staleness-warning").startswith("Stale: no update for")
    browser.save_screenshot(str(SCREENSHOTS / "live-stale.png"))


DEMO_SECONDS = 30.0
# Every chart of the health page.
HEALTH_GRAPHS = ("health-completeness-chart", "health-buffers-chart", *(c.graph_id for c in CHARTS))


def chart_texts(driver: webdriver.Chrome, graph_id: str) -> list[str]:
    """The annotation texts of a chart (where "no data yet" and the like are written)."""
    texts = driver.execute_script(
        "const g = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return g && g.layout ? (g.layout.annotations || []).map(a => a.text) : null;",
        f"#{graph_id}",
    )
    return list(texts or [])


@pytest.fixture
def demo_app(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "demo.log"
    app = quotewatch(
        "demo",
        "--port", str(port),
        "--data-dir", str(tmp_path / "data"),
        "--drop-matches", "0.05",
        "--seed", "180",
        "--flush-interval", "2",
        log=log,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: httpx.get(url + "/health", timeout=1).status_code == 200,
            "the demo",
            log,
            timeout=60,
        )
        started = time.monotonic()
        yield url
        assert time.monotonic() - started >= DEMO_SECONDS
    finally:
        stop(app)


@pytest.mark.chromium
def test_after_30_s_of_a_faulty_demo_every_health_chart_has_data(
    browser: webdriver.Chrome, demo_app: str
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    time.sleep(DEMO_SECONDS)  # the demo runs for 30 s before anyone looks
    browser.set_window_size(1400, 1000)
    browser.get(demo_app + "/")
    WebDriverWait(browser, 15, poll_frequency=0.1).until(
        lambda d: text(d, "mid-value") not in ("", "—")
    )
    WebDriverWait(browser, 15, poll_frequency=0.1).until(lambda d: traces(d, "candles-chart") >= 1)
    assert not browser.find_element(By.ID, "staleness-warning").is_displayed()
    browser.save_screenshot(str(SCREENSHOTS / "demo-live.png"))

    # 512 labelled samples make the first mini-batch: at about 20 book updates a second that
    # is near 30 s. Read before the page scrapes, so a batch trained by now is on the page.
    trained = metric_value(demo_app, "ml_train_duration_seconds_count")
    browser.get(demo_app + "/system-health")
    WebDriverWait(browser, 15, poll_frequency=0.2).until(
        lambda d: (
            text(d, "health-updated").startswith("Metrics scraped")
            and traces(d, "health-msg-rate-chart") >= 1
        )
    )
    empty = {
        graph: chart_texts(browser, graph)
        for graph in HEALTH_GRAPHS
        if chart_texts(browser, graph) or traces_or_bars(browser, graph) == 0
    }
    assert empty.pop("health-remote-write-chart") == ["remote write is off (no push URL)"]
    # Before the first batch the chart says so (a batch trained while the page loaded may
    # already show); after it, it has data.
    if trained == 0 and "health-ml-chart" in empty:
        assert empty.pop("health-ml-chart") == ["no training batch yet: model warming up"]
    assert empty == {}, empty
    # Trades were dropped at the source: the gaps are counted, and nothing stored is missing.
    assert int(text(browser, "health-trade-gaps-value").replace(",", "")) >= 1
    assert text(browser, "health-completeness-value") == "100.0%"
    assert text(browser, "health-remote-write-value") == "off"
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, int(height) + 200)
    browser.save_screenshot(str(SCREENSHOTS / "demo-health.png"))


def metric_value(url: str, sample: str) -> float:
    """The value of an unlabelled sample on the app's /metrics."""
    body = httpx.get(url + "/metrics", timeout=5).raise_for_status().text
    (line,) = [line for line in body.splitlines() if line.startswith(sample + " ")]
    return float(line.split()[1])


def traces_or_bars(driver: webdriver.Chrome, graph_id: str) -> int:
    """Traces with points, bar charts included (their values are on x or y)."""
    count = driver.execute_script(
        "const g = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return g && g.data ? g.data.filter(t => (t.x || t.y || []).length > 0).length : 0;",
        f"#{graph_id}",
    )
    return int(count)
