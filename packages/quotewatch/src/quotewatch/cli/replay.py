"""`quotewatch replay`: run a recording through the whole pipeline, as `run` runs the live feed
(parser, books, features, model, labels, storage, /metrics if asked, push if configured), or
with `--feed-only` through the parse -> book -> gap-check path alone.

Replaying a day's recording is the model's backtest: the summary's `model` section holds its
prequential scores (log-loss skill, AUC, calibration) for that day.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from quotewatch.app.summary import run_summary, write_summary
from quotewatch.cli.run import LIVE_LABEL_THRESHOLD
from quotewatch.config import ConfigError, Settings
from quotewatch.ingest.replay import ReplayError, open_recording, replay
from quotewatch.ingest.session import FeedSession

if TYPE_CHECKING:
    from quotewatch.ingest.parser import Feed

log = logging.getLogger(__name__)

REPLAY_SHUTDOWN_BUDGET = 300.0  # seconds


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number (times the recorded pace; 0 = as fast as possible), got {text!r}"
        ) from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = as fast as possible), got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `replay` sub-command."""
    parser = subparsers.add_parser(
        "replay",
        help="replay a recording through the whole pipeline (the model's backtest)",
        description="Read a recording written by `quotewatch record` (or bare feed messages, "
        "one per line), detect its feed and drive every frame through what `run` runs: parser, "
        "order books, features, model, labels and Iceberg storage, pushing metrics if a push "
        "URL is set. Prints the run summary, with the model's prequential scores.",
    )
    add = parser.add_argument
    add("file", type=Path, help="the .jsonl recording")
    add("--speed", type=_speed, default=0.0,
        help="times the recorded pace; 0 = as fast as possible")  # fmt: skip
    add("--feed-only", action="store_true",
        help="only parse, build books and check gaps (fast; no model, no storage)")  # fmt: skip
    add("--progress", action="store_true",
        help="show a progress bar even when stderr is not a terminal")  # fmt: skip
    add("--summary-json", type=Path, default=None, metavar="PATH",
        help="also write the run summary to PATH as JSON")  # fmt: skip
    # The storage, push and model options of `run`, with the same names and settings.
    add("--no-storage", action="store_true", help="do not write to Iceberg")
    add("--data-dir", default=None, help="local state: catalog, warehouse, spill (QW_DATA_DIR)")
    add("--catalog-uri", default=None, help="Iceberg SQL catalog URI (QW_CATALOG_URI)")
    add("--warehouse", default=None, help="Iceberg warehouse location (QW_WAREHOUSE)")
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
    add("--metrics", action="store_true", help="serve /metrics while replaying")
    add("--dashboard", action="store_true", help="serve the dashboard and /metrics")
    add("--host", default=None, help="bind address for --metrics/--dashboard (QW_HOST)")
    add("--port", default=None,
        help="port for --metrics/--dashboard, 0 = any free (QW_PORT, then PORT; 8050)")  # fmt: skip
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Replay the file and report what it held (and, unless --feed-only, what the model did)."""
    try:
        feed, _ = open_recording(args.file)
        settings = Settings.resolve(args)
    except (ReplayError, ConfigError) as exc:
        log.error("%s", exc)
        return 2
    progress = args.progress or sys.stderr.isatty()
    if args.feed_only:
        session = FeedSession(feed, connection_label="*")
        try:
            result = asyncio.run(replay(args.file, session, speed=args.speed, progress=progress))
        except ReplayError as exc:
            log.error("%s", exc)
            return 2
        session.close()
        write_summary(run_summary(session, result.duration_s), args.summary_json)
        return 0
    return _run_pipeline(args, settings, feed, progress)


def _run_pipeline(args: argparse.Namespace, settings: Settings, feed: Feed, progress: bool) -> int:
    # The pipeline pulls in pyiceberg (seconds to import): only a full replay imports it.
    from qw_metrics import RemoteWriteConfigError

    from quotewatch.app.runner import Runner, RunOptions
    from quotewatch.pipeline.pipeline import PipelineConfig
    from quotewatch.storage.catalog import StorageConfigError

    config = PipelineConfig(label_threshold=settings.label_threshold or LIVE_LABEL_THRESHOLD)
    # No Cloud Run grace period to keep: the flush at the end may take what a long replay needs.
    options = RunOptions(
        storage=not args.no_storage, dashboard=args.dashboard, replay=True,
        serve=args.metrics or args.dashboard, shutdown_budget=REPLAY_SHUTDOWN_BUDGET,
    )  # fmt: skip
    try:
        runner = Runner(settings, feed, options, config=config, source="replay")
        runner.start_services()
    except (StorageConfigError, RemoteWriteConfigError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:  # e.g. the port is taken
        log.error("cannot serve on %s:%s: %s (pick another --port)", settings.host,
                  settings.port, exc)  # fmt: skip
        return 2
    if runner.url is not None:
        print(f"prometheus metrics: {runner.url}/metrics", flush=True)
    if runner.writer is not None:
        print(f"storage: {runner.writer.config.warehouse}", flush=True)
    path, speed = args.file, args.speed
    try:
        summary = asyncio.run(
            runner.run(lambda: replay(path, runner.session, speed=speed, progress=progress))
        )
    except ReplayError as exc:
        log.error("%s", exc)
        return 2
    write_summary(summary, args.summary_json)
    return 0
