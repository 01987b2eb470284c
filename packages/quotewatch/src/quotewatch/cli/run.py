"""`quotewatch run`: the pipeline against the live Coinbase feed (production URLs by default).

Also holds what `run` and `demo` share: their common options and how a run is executed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from quotewatch.cli.arguments import positive
from quotewatch.config import ConfigError, Settings

if TYPE_CHECKING:
    from quotewatch.app.runner import Runner
    from quotewatch.ingest.parser import Feed

# The pipeline pulls in scikit-learn and pyiceberg (seconds to import): handlers import it when
# they run, so `quotewatch --help` stays fast.

log = logging.getLogger(__name__)

LIVE_LABEL_THRESHOLD = 0.0001  # 0.01%


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options `run` and `demo` share. Flags left out fall back to the environment, then
    the defaults (see quotewatch.config)."""
    add = parser.add_argument
    add("--products", default=None, help="comma-separated products (QW_PRODUCTS; BTC-USD)")
    add("--duration", type=positive, default=None, metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)")  # fmt: skip
    add("--no-storage", action="store_true", help="do not write to Iceberg")
    add("--no-dashboard", action="store_true", help="serve only /metrics, no dashboard")
    add("--data-dir", default=None, help="local state: catalog, warehouse, spill (QW_DATA_DIR)")
    add("--catalog-uri", default=None, help="Iceberg SQL catalog URI (QW_CATALOG_URI)")
    add("--warehouse", default=None, help="Iceberg warehouse location (QW_WAREHOUSE)")
    add("--host", default=None,
        help="bind address (QW_HOST; 127.0.0.1, or 0.0.0.0 on Cloud Run)")  # fmt: skip
    add("--port", default=None,
        help="dashboard / metrics port, 0 = any free (QW_PORT, then PORT; 8050)")  # fmt: skip
    add("--flush-interval", default=None, metavar="SECONDS",
        help="storage flush timer per table (QW_FLUSH_INTERVAL; 10)")  # fmt: skip
    add("--flush-rows", default=None, metavar="ROWS",
        help="storage flush size per table (QW_FLUSH_ROWS; 5000)")  # fmt: skip
    add("--push-url", default=None,
        help="Prometheus remote-write URL, e.g. Grafana Cloud (GRAFANA_PUSH_URL; off)")  # fmt: skip
    add("--push-interval", default=None, metavar="SECONDS",
        help="seconds between pushes (QW_PUSH_INTERVAL; 15)")  # fmt: skip
    add("--label-threshold", default=None, metavar="FRACTION",
        help="price move that labels a sample 1, as a fraction (QW_LABEL_THRESHOLD)")  # fmt: skip
    add("--max-id-jump", default=None, metavar="IDS",
        help="ids further ahead are held until confirmed (QW_MAX_ID_JUMP; 1000000)")  # fmt: skip
    add("--backfill-max-ids", default=None, metavar="IDS",
        help="Exchange feed: missing trade ids of one gap fetched from the REST API, 0 = off "
        "(QW_BACKFILL_MAX_IDS; 10000)")  # fmt: skip
    add("--wal-fsync-interval", default=None, metavar="SECONDS",
        help="seconds between frame-log group writes (QW_WAL_FSYNC_INTERVAL; 0.2)")  # fmt: skip
    add("--wal-max-bytes", default=None, metavar="BYTES",
        help="frame log size bound, 0 = no frame log (QW_WAL_MAX_BYTES; 1073741824)")  # fmt: skip
    add("--summary-json", type=Path, default=None, metavar="PATH",
        help="write the run summary to PATH as JSON")  # fmt: skip


def execute(
    args: argparse.Namespace,
    settings: Settings,
    feed: Feed,
    make_feed: Callable[[Runner], Callable[[], Awaitable[object]]],
    *,
    label_threshold: float,
    source: str,
) -> int:
    """Run the pipeline with `make_feed(runner)` as its feed; print and write the summary."""
    from qw_metrics import RemoteWriteConfigError

    from quotewatch.app.runner import Runner, RunOptions
    from quotewatch.app.summary import exit_status, write_summary
    from quotewatch.pipeline.pipeline import PipelineConfig
    from quotewatch.startup import probe_storage
    from quotewatch.storage.catalog import StorageConfigError
    from quotewatch.wal import FrameLogBusyError

    if not args.no_storage:
        try:
            probe_storage(settings)
        except ConfigError as exc:
            log.error("%s", exc)
            return 2
    config = PipelineConfig(label_threshold=settings.label_threshold or label_threshold)
    options = RunOptions(
        storage=not args.no_storage, dashboard=not args.no_dashboard, duration=args.duration
    )
    try:
        runner = Runner(settings, feed, options, config=config, source=source)
    except (StorageConfigError, RemoteWriteConfigError, FrameLogBusyError) as exc:
        log.error("%s", exc)
        return 2
    try:
        runner.start_services()
    except OSError as exc:  # e.g. the port is taken
        log.error("cannot serve on %s:%s: %s (pick another --port)", settings.host,
                  settings.port, exc)  # fmt: skip
        return 2
    kind = "dashboard" if options.dashboard else "metrics"
    print(f"quotewatch {kind}: {runner.url}/", flush=True)
    print(f"prometheus metrics: {runner.url}/metrics", flush=True)
    if runner.pusher.enabled:
        print(f"remote write: every {settings.push_interval:g}s", flush=True)
    if runner.writer is not None:
        print(f"storage: {runner.writer.config.warehouse}", flush=True)
    summary = asyncio.run(runner.run(make_feed(runner)))
    write_summary(summary, args.summary_json)
    return exit_status(summary)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `run` sub-command."""
    parser = subparsers.add_parser(
        "run",
        help="run the pipeline on the live Coinbase feed",
        description="Connect to Coinbase (Exchange or Advanced Trade), run the pipeline "
        "(features, online model, labels), write Iceberg tables, serve the dashboard and "
        "/metrics, and push metrics if a push URL is set. Exchange credentials "
        "(COINBASE_API_KEY, COINBASE_API_SECRET, COINBASE_API_PASSPHRASE) enable the unbatched "
        "level2 channel. Stops on Ctrl-C, SIGTERM or --duration.",
    )
    parser.add_argument("--feed", default=None, choices=("exchange", "advanced"),
                        help="which Coinbase feed (QW_FEED; exchange)")  # fmt: skip
    parser.add_argument("--url", default=None,
                        help="websocket URL (default: the feed's production URL)")  # fmt: skip
    parser.add_argument("--rest-url", default=None,
                        help="REST API for trade backfill (QW_REST_URL; "
                        "https://api.exchange.coinbase.com)")  # fmt: skip
    add_common_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run against the live feed."""
    from quotewatch.ingest.auth import ExchangeCredentials
    from quotewatch.ingest.client import FeedClient
    from quotewatch.ingest.parser import Feed
    from quotewatch.ingest.rest_trades import EXCHANGE_REST_URL

    try:
        settings = Settings.resolve(args)
        feed = Feed(settings.feed)
        credentials = ExchangeCredentials.from_env() if feed is Feed.EXCHANGE else None
    except ConfigError as exc:
        log.error("%s", exc)
        return 2

    def make_feed(runner: Runner) -> Callable[[], Awaitable[object]]:
        client = FeedClient(runner.session, url=args.url, credentials=credentials)
        runner.backfill_from(settings.rest_url or EXCHANGE_REST_URL)
        return client.run

    return execute(
        args, settings, feed, make_feed, label_threshold=LIVE_LABEL_THRESHOLD, source=str(feed)
    )
