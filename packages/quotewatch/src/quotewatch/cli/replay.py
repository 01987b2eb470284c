"""`quotewatch replay`: run a recording through the same parse -> book -> gap-check path."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from quotewatch.app.summary import run_summary, write_summary
from quotewatch.ingest.replay import ReplayError, open_recording, replay
from quotewatch.ingest.session import FeedSession

log = logging.getLogger(__name__)


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
        help="replay a recording through the parser, order books and gap detection",
        description="Read a recording written by `quotewatch record` (or bare feed messages, "
        "one per line), detect its feed and drive every frame through the live path. Prints "
        "the run summary.",
    )
    parser.add_argument("file", type=Path, help="the .jsonl recording")
    parser.add_argument("--speed", type=_speed, default=0.0,
                        help="times the recorded pace; 0 = as fast as possible")  # fmt: skip
    parser.add_argument("--summary-json", type=Path, default=None, metavar="PATH",
                        help="also write the run summary to PATH as JSON")  # fmt: skip
    parser.add_argument("--progress", action="store_true",
                        help="show a progress bar even when stderr is not a terminal")  # fmt: skip
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Replay the file and report what it held."""
    try:
        feed, _ = open_recording(args.file)
        session = FeedSession(feed, connection_label="*")
        progress = args.progress or sys.stderr.isatty()
        result = asyncio.run(replay(args.file, session, speed=args.speed, progress=progress))
    except ReplayError as exc:
        log.error("%s", exc)
        return 2
    write_summary(run_summary(session, result.duration_s), args.summary_json)
    return 0
