"""`quotewatch record`: capture a live feed to a JSON Lines recording."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

from quotewatch.cli.arguments import positive, products
from quotewatch.config import ConfigError
from quotewatch.ingest.auth import ExchangeCredentials
from quotewatch.ingest.client import FeedClient
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.record import Recorder
from quotewatch.ingest.session import FeedSession

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `record` sub-command."""
    parser = subparsers.add_parser(
        "record",
        help="record a live feed to a JSON Lines file",
        description="Connect to a Coinbase feed (or the local exchange via --url) and write one "
        'line per received frame: {"ts": <receive time, epoch seconds>, "msg": <frame>}. '
        "Runs until Ctrl-C or --duration. Exchange level2 (unbatched) is used when "
        "COINBASE_API_KEY, COINBASE_API_SECRET and COINBASE_API_PASSPHRASE are set.",
    )
    parser.add_argument("--feed", choices=[f.value for f in Feed], default="exchange",
                        help="which Coinbase feed (default exchange)")  # fmt: skip
    parser.add_argument("--products", type=products, default=("BTC-USD",),
                        help="comma-separated products (default BTC-USD)")  # fmt: skip
    parser.add_argument("--url", default=None,
                        help="websocket URL (default: the feed's production URL)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="the .jsonl file to write")
    parser.add_argument("--duration", type=positive, default=None, metavar="S",
                        help="stop after S seconds (default: run until Ctrl-C)")  # fmt: skip
    parser.add_argument("--silence-timeout", type=positive, default=10.0, metavar="S",
                        help="reconnect after S seconds without a frame (default 10)")  # fmt: skip
    parser.set_defaults(handler=run)


async def _record(args: argparse.Namespace, recorder: Recorder) -> bool:
    """Record until the duration ends; whether the client ever connected."""
    feed = Feed(args.feed)
    credentials = ExchangeCredentials.from_env() if feed is Feed.EXCHANGE else None
    session = FeedSession(feed, products=args.products, taps=[recorder])
    client = FeedClient(
        session, url=args.url, credentials=credentials, silence_timeout=args.silence_timeout
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.run(), args.duration)
    return session.stats.frames > 0


def run(args: argparse.Namespace) -> int:
    """Record until the duration ends or Ctrl-C."""
    try:
        with Recorder(args.out) as recorder:
            connected = False
            with contextlib.suppress(KeyboardInterrupt):
                connected = asyncio.run(_record(args, recorder))
            log.info("recorded %d frames to %s", recorder.frames, args.out)
    except (ConfigError, OSError) as exc:
        log.error("%s", exc)
        return 2
    if not connected:
        log.error("never received a frame from %s: is the feed reachable? (see --url)",
                  args.url or f"the {args.feed} feed")  # fmt: skip
        return 2
    return 0
