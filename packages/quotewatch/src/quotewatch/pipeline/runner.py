"""Runs quotewatch end to end: feed -> pipeline -> storage and state -> dashboard, plus metrics.

Threading model
---------------
- **Main thread, one asyncio event loop**: the feed (a `FeedClient` connection, a replay, and
  in the demo the in-process `LocalExchange` too), the event-loop lag probe, and the pipeline.
  The pipeline runs synchronously inside the feed's receive loop, one event at a time, as a
  `FeedSession` consumer; it never awaits and never does I/O, so the loop never blocks on it
  for longer than one message's processing.
- **Storage thread** (`StorageWriter`): the pipeline hands rows over with `submit_*`, which
  only appends to an in-memory buffer under a short lock; the writer's own thread converts and
  commits them to Iceberg. Slow storage never reaches the feed loop.
- **Dashboard threads** (waitress, when enabled; else a small `/metrics` server): they read
  `StateStore.current()`, an immutable snapshot the pipeline swaps in with one reference
  assignment, so readers never lock against the pipeline.
- **Metrics pusher threads** (`MetricsPusher`, when a push URL is set): collect the registry
  and send remote-write requests on their own schedule.

For the run, `process_tuning.tuned_for_feed` shortens the GIL switch interval (other threads
give the loop the GIL back within 0.5 ms), freezes the objects alive at start-up out of the
garbage collector's reach and collects young objects less often: all bound the latency tail.

Shutdown (SIGINT, SIGTERM, `--duration`, or the end of a replay), in this order: stop the feed
(cancel its task), drain the pipeline (`Pipeline.close`: predictions still waiting for a label
are written with a null label and the counters are reported), flush storage
(`StorageWriter.close`), final metrics push (`MetricsPusher.stop(flush=True)`), then stop the
dashboard or metrics server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from qw_metrics import MetricsPusher

from quotewatch.config import Settings
from quotewatch.dashboard.serving import serve
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import Consumer, FeedSession
from quotewatch.metrics import exposition
from quotewatch.pipeline.loop_lag import probe_loop_lag
from quotewatch.pipeline.pipeline import Pipeline, PipelineConfig
from quotewatch.pipeline.process_tuning import tuned_for_feed
from quotewatch.pipeline.summary import pipeline_summary
from quotewatch.state import StateStore
from quotewatch.storage.writer import StorageWriter
from quotewatch.summary import build_summary

log = logging.getLogger(__name__)

STORAGE_CLOSE_TIMEOUT = 30.0


@dataclass(frozen=True)
class RunOptions:
    """What to run beside the feed and the pipeline."""

    storage: bool = True
    dashboard: bool = True
    duration: float | None = None  # seconds; None runs until a signal (or the replay ends)
    # A replay: every product in the recording is followed, and latency is measured from
    # processing, not from the recorded receive time.
    replay: bool = False


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404, "only /metrics is served here")
            return
        content_type, body = exposition()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: scrapes are routine
        log.debug(format, *args)


class MetricsServer:
    """`/metrics` on its own daemon thread, for runs without the dashboard."""

    def __init__(self, host: str, port: int) -> None:
        self._server = ThreadingHTTPServer((host, port), _MetricsHandler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="qw-metrics-http", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8050."""
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)


class Runner:
    """Builds the session, pipeline, storage, dashboard and pusher for one run; see the module
    docstring for the threading model.

        runner = Runner(settings, Feed.EXCHANGE, RunOptions(duration=60))
        summary = asyncio.run(runner.run(lambda: FeedClient(runner.session).run()))
    """

    def __init__(
        self,
        settings: Settings,
        feed: Feed,
        options: RunOptions | None = None,
        *,
        products: tuple[str, ...] | None = None,
        config: PipelineConfig | None = None,
        source: str | None = None,
    ) -> None:
        self.settings = settings
        self.options = options = options or RunOptions()
        self.products = settings.products if products is None else products
        self.store = StateStore()
        self.session = FeedSession(feed, products=self.products)
        self.writer = StorageWriter.from_settings(settings) if options.storage else None
        self.pipeline = Pipeline(
            None if options.replay else self.products,
            self.store,
            self.writer,
            config,
            books=self.session.books,
            source=source or str(feed),
            replay=options.replay,
        )
        # process returns the receive time its latency decorator reads; the session ignores it.
        self.session.consumers.append(cast(Consumer, self.pipeline.process))
        self.pusher = MetricsPusher.from_env(job="quotewatch", environ=_push_environ(settings))
        self.server: Any = None  # DashboardServer or MetricsServer once started
        self._started = 0.0

    @property
    def url(self) -> str | None:
        """Base URL of the dashboard (or of `/metrics` alone), once started."""
        return None if self.server is None else str(self.server.url)

    def start_services(self) -> None:
        """Start the dashboard (or the bare `/metrics` server) and the metrics pusher."""
        host, port = self.settings.host, self.settings.port
        if self.options.dashboard:
            self.server = serve(self.store, host=host, port=port)
        else:
            self.server = MetricsServer(host, port)
        self.pusher.start()

    async def run(self, feed: Callable[[], Awaitable[object]]) -> dict[str, Any]:
        """Run `feed()` (a coroutine driving `self.session`) until a signal, the duration, or
        its end; then shut down in order and return the run summary."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        if self.server is None:
            self.start_services()
        failure: BaseException | None = None
        try:
            with tuned_for_feed():
                self._started = time.monotonic()
                failure = await self._feed_until_stopped(feed, stop)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            summary = self.shutdown()
        if failure is not None:
            raise failure
        return summary

    async def _feed_until_stopped(
        self, feed: Callable[[], Awaitable[object]], stop: asyncio.Event
    ) -> BaseException | None:
        """Run the feed and the loop-lag probe until the feed ends, `stop` is set or the
        duration passes; return the feed's exception, if it raised one."""
        feed_task = asyncio.create_task(_run_feed(feed), name="qw-feed")
        lag_task = asyncio.create_task(probe_loop_lag(), name="qw-loop-lag")
        stop_task = asyncio.create_task(stop.wait(), name="qw-stop")
        try:
            done, _ = await asyncio.wait(
                {feed_task, stop_task},
                timeout=self.options.duration,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if feed_task in done and not feed_task.cancelled():
                return feed_task.exception()
            return None
        finally:
            for task in (feed_task, lag_task, stop_task):
                task.cancel()
            await asyncio.gather(feed_task, lag_task, stop_task, return_exceptions=True)

    def shutdown(self) -> dict[str, Any]:
        """Drain the pipeline, flush storage, push metrics a last time, stop serving; return
        the run summary. The feed must already be stopped."""
        duration = time.monotonic() - self._started
        self.session.report_counts()
        self.pipeline.close()
        counts = None
        if self.writer is not None:
            counts = self.writer.close(STORAGE_CLOSE_TIMEOUT)
        self.pusher.stop(flush=True)
        if self.server is not None:
            self.server.stop()
            self.server = None
        summary = build_summary(self.session, duration)
        summary.update(pipeline_summary(self.pipeline, counts))
        return summary


async def _run_feed(feed: Callable[[], Awaitable[object]]) -> None:
    await feed()


def _push_environ(settings: Settings) -> dict[str, str]:
    """The pusher's environment, from settings (flags already override the environment)."""
    env = {
        "QW_PUSH_INTERVAL": str(settings.push_interval),
        "ENVIRONMENT": settings.environment,
    }
    for key, value in (
        ("GRAFANA_PUSH_URL", settings.push_url),
        ("GRAFANA_USER", settings.grafana_user),
        ("GRAFANA_API_KEY", settings.grafana_api_key),
    ):
        if value:
            env[key] = value
    return env
