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
- **Frame-log thread** (`FrameLog`, for a live feed with storage): the feed loop appends each
  frame to a list before handling it; the log's thread writes and fsyncs them in groups. At
  start, before the feed, the frames an earlier run logged but did not store are replayed into
  storage (`quotewatch.wal.recovery`).

For the run, `process_tuning.tuned_for_feed` shortens the GIL switch interval (other threads
give the loop the GIL back within 0.5 ms), freezes the objects alive at start-up out of the
garbage collector's reach and collects young objects less often: all bound the latency tail.

Shutdown (SIGINT, SIGTERM, `--duration`, or the end of a replay), in this order: stop the feed
(cancel its task), drain the pipeline (`Pipeline.close`: predictions still waiting for a label
are written with a null label and the counters are reported), flush storage
(`StorageWriter.close`), close the frame log (committed segments deleted), final metrics push
(`MetricsPusher.stop(flush=True)`), then stop the dashboard or metrics server. All of it within
`RunOptions.shutdown_budget` (8 s: Cloud Run kills 10 s after SIGTERM); rows storage cannot
commit in time are spilled, not lost.
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
from typing import Any

from qw_metrics import MetricsPusher

from quotewatch.app.loop_lag import probe_loop_lag
from quotewatch.app.metrics_server import MetricsServer
from quotewatch.app.process_tuning import tuned_for_feed
from quotewatch.app.summary import run_summary
from quotewatch.config import Settings
from quotewatch.dashboard.serving import serve
from quotewatch.ingest.backfill import Backfiller
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.rest_trades import TradesApi
from quotewatch.ingest.session import FeedSession
from quotewatch.pipeline.pipeline import Pipeline, PipelineConfig
from quotewatch.state import StateStore
from quotewatch.storage.writer import StorageWriter
from quotewatch.wal import FrameLog
from quotewatch.wal.recovery import Recovery, recover

log = logging.getLogger(__name__)

# Cloud Run sends SIGTERM, then SIGKILL 10 s later: the whole shutdown fits in 8 s, and rows
# storage cannot commit by then are spilled to disk (recovered by the next start), not lost.
SHUTDOWN_BUDGET = 8.0
PUSH_RESERVE = 1.5  # seconds of the budget kept for the final metrics push
SERVER_STOP_TIMEOUT = 0.5
# At a stop, trade backfill in flight gets this long (the feed still running, so the local
# exchange still answers) before what is left counts as unrecovered.
BACKFILL_SETTLE = 2.0
BACKFILL_DELIVER_EVERY = 0.1


@dataclass(frozen=True)
class RunOptions:
    """What to run beside the feed and the pipeline."""

    storage: bool = True
    dashboard: bool = True
    duration: float | None = None  # seconds; None runs until a signal (or the replay ends)
    # A replay: every product in the recording is followed, and latency is measured from
    # processing, not from the recorded receive time.
    replay: bool = False
    shutdown_budget: float = SHUTDOWN_BUDGET  # seconds from the stop to the end of shutdown
    # False serves neither the dashboard nor /metrics (a replay that was not asked to).
    serve: bool = True


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
        self.session = FeedSession(
            feed, products=self.products, max_id_jump=settings.max_id_jump,
            drop_unsubscribed=not options.replay,
        )  # fmt: skip
        # A recording is its own log: only a live feed with storage keeps one.
        self.frame_log: FrameLog | None = None
        if options.storage and not options.replay and settings.wal_max_bytes:
            self.frame_log = FrameLog(
                settings.data_dir / "wal",
                fsync_interval=settings.wal_fsync_interval,
                max_bytes=settings.wal_max_bytes,
            )
            self.session.log_frames(self.frame_log)
        self.recovery: Recovery | None = None
        self.writer = (
            StorageWriter.from_settings(settings, frames=self.frame_log)
            if options.storage
            else None
        )
        self.pipeline = Pipeline(
            None if options.replay else self.products,
            self.store,
            self.writer,
            config,
            source=source or str(feed),
            replay=options.replay,
        )
        self.session.consumers.append(self.pipeline.process)
        self.pusher = MetricsPusher.from_env(job=settings.job, environ=_push_environ(settings))
        self.server: Any = None  # DashboardServer or MetricsServer once started
        self._services_started = False
        self.backfiller: Backfiller | None = None
        self._started = 0.0

    def backfill_from(self, rest_url: str) -> None:
        """Heal Exchange trade-id gaps from the REST API at `rest_url` (see
        `quotewatch.ingest.backfill`); off when the setting `backfill_max_ids` is 0."""
        if self.session.feed is not Feed.EXCHANGE or self.settings.backfill_max_ids == 0:
            return
        self.backfiller = Backfiller(TradesApi(rest_url), max_ids=self.settings.backfill_max_ids)
        self.backfiller.start()
        self.session.trades.on_gap = self.backfiller.request

    @property
    def url(self) -> str | None:
        """Base URL of the dashboard (or of `/metrics` alone), once started."""
        return None if self.server is None else str(self.server.url)

    def start_services(self) -> None:
        """Start the dashboard (or the bare `/metrics` server) and the metrics pusher."""
        host, port = self.settings.host, self.settings.port
        writer = self.writer
        storage_open = None if writer is None else (lambda: writer.storage_open)
        if self.options.dashboard and self.options.serve:
            self.server = serve(self.store, host=host, port=port, storage_open=storage_open)
        elif self.options.serve:
            self.server = MetricsServer(host, port, self.store, storage_open)
        self.pusher.start()
        self._services_started = True

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
        if self.server is None and not self._services_started:
            self.start_services()
        if self.frame_log is not None and self.writer is not None and self.recovery is None:
            self.recovery = recover(
                self.frame_log, self.writer, max_id_jump=self.settings.max_id_jump
            )
            if self.recovery.error is not None:
                # Without the committed positions, this run's could not be told from the
                # earlier runs': run without the log, and keep its segments for a later start.
                log.error("frame log off for this run: %s", self.recovery.error)
                self.session.log_frames(None)
                self.writer.detach_frames()
                self.frame_log.close()
                self.frame_log = None
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
        deliver_task = asyncio.create_task(self._deliver_backfill(), name="qw-backfill")
        tasks = [feed_task, lag_task, stop_task, deliver_task]
        try:
            done, _ = await asyncio.wait(
                {feed_task, stop_task},
                timeout=self.options.duration,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if feed_task in done and not feed_task.cancelled():
                return feed_task.exception()
            await self._settle_backfill(feed_task)
            return None
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver_backfill(self) -> None:
        while True:
            await asyncio.sleep(BACKFILL_DELIVER_EVERY)
            self._backfilled()

    async def _settle_backfill(self, feed_task: asyncio.Task[None]) -> None:
        """Give backfill in flight up to `BACKFILL_SETTLE` seconds, the feed still running."""
        deadline = time.monotonic() + BACKFILL_SETTLE
        backfiller = self.backfiller
        while backfiller is not None and not backfiller.idle and not feed_task.done():
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        self._backfilled()

    def _backfilled(self) -> None:
        """Hand the trades backfill found to the session (gap accounting) and storage."""
        if self.backfiller is not None:
            self.pipeline.backfilled(self.session.backfilled(self.backfiller.take()))

    def shutdown(self) -> dict[str, Any]:
        """Drain the pipeline, flush storage, push metrics a last time, stop serving, all
        within `options.shutdown_budget` seconds; return the run summary. The feed must already
        be stopped."""
        now = time.monotonic()
        deadline = now + self.options.shutdown_budget
        duration = now - self._started
        if self.backfiller is not None:
            self.backfiller.close(SERVER_STOP_TIMEOUT)
            self._backfilled()
        self.session.close()
        self.session.report_counts()
        self.pipeline.close()
        counts = None
        if self.writer is not None:
            # What close() cannot commit in its share of the budget it spills.
            counts = self.writer.close(deadline - time.monotonic() - PUSH_RESERVE)
        if self.frame_log is not None:
            self.frame_log.close(max(0.1, deadline - time.monotonic() - PUSH_RESERVE))
        self._final_push(deadline - time.monotonic() - SERVER_STOP_TIMEOUT)
        if self.server is not None:
            self.server.stop(SERVER_STOP_TIMEOUT)
            self.server = None
        return run_summary(
            self.session, duration, self.pipeline, counts, self.backfiller,
            frame_log=self.frame_log, recovery=self.recovery,
        )  # fmt: skip

    def _final_push(self, timeout: float) -> None:
        """Stop the pusher with a last push, waiting at most `timeout` seconds: a request to a
        hung receiver can outlast the budget, and the pusher's threads do not hold up exit."""
        self.pusher.flush_timeout = max(0.1, timeout)
        stopper = threading.Thread(
            target=self.pusher.stop, kwargs={"flush": True}, name="qw-final-push", daemon=True
        )
        stopper.start()
        stopper.join(max(0.1, timeout))
        if stopper.is_alive():
            log.warning("final metrics push did not finish within %.1f s; exiting", timeout)


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
