"""Scrapes the process's own metric registry on a timer into the dashboard's history.

Each scrape also derives the health page's time-series points (rates and quantiles over a short
window ending at that scrape) once, so rendering the page only reads finished numbers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from quotewatch.dashboard.series import MetricHistory, MetricSource, Scrape, Window, scrape

log = logging.getLogger(__name__)

Derive = Callable[[Window], Mapping[str, float | None]]


@dataclass(frozen=True, slots=True)
class Point:
    """Derived values (keyed `chart/trace`) for the window ending at `time`."""

    time: float
    values: Mapping[str, float | None]


class MetricsSampler:
    """Keeps `capacity` scrapes of `source` taken every `interval` seconds, plus derived points."""

    def __init__(
        self,
        source: MetricSource,
        derive: Derive,
        *,
        interval: float = 1.0,
        capacity: int = 300,
        window: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"sample interval must be > 0 s, got {interval!r}")
        self.history = MetricHistory(capacity)
        self.interval = interval
        self._source = source
        self._derive = derive
        self._window = window
        self._clock = clock
        self._points: deque[Point] = deque(maxlen=capacity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> Scrape:
        """Scrape now, store it and derive its point; returns the scrape."""
        taken = scrape(self._source, self._clock())
        self.history.append(taken)
        window = next(self.history.windows(self._window, (taken,)), None)
        if window is not None:
            self._points.append(Point(taken.time, self._derive(window)))
        return taken

    def points(self) -> tuple[Point, ...]:
        """Derived points, oldest first."""
        return tuple(self._points)

    def start(self) -> None:
        """Sample every `interval` seconds in a daemon thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="qw-metrics-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the sampling thread and wait up to `timeout` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # a broken collector must not kill the health page's history
                log.exception("scraping the metric registry failed")
            self._stop.wait(self.interval)
