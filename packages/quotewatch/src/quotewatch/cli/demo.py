"""`quotewatch demo`: everything local — the simulated exchange (in-process, on loopback), the
pipeline, Iceberg storage under the data dir, the dashboard and /metrics."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from quotewatch.cli.arguments import positive, probability
from quotewatch.cli.run import LIVE_LABEL_THRESHOLD, add_common_options, execute
from quotewatch.config import ConfigError, Settings

if TYPE_CHECKING:
    from quotewatch.app.runner import Runner

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `demo` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="run everything locally: simulated exchange, pipeline, storage, dashboard",
        description="Start the simulated Coinbase exchange in-process on loopback, connect the "
        "pipeline to it, write Iceberg tables under the data dir, serve the dashboard and "
        "/metrics, and push metrics if a push URL is set. Prints its URLs; stops on Ctrl-C, "
        "SIGTERM or --duration.",
    )
    parser.add_argument("--feed", default=None, choices=("exchange", "advanced"),
                        help="simulated feed protocol (QW_FEED; exchange)")  # fmt: skip
    parser.add_argument("--rate", type=positive, default=1.0,
                        help="simulated market activity, times the normal rate")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="simulated market seed")
    parser.add_argument("--drop-matches", type=probability, default=0.0, metavar="P",
                        help="drop each trade at the source with probability P")  # fmt: skip
    parser.add_argument("--faults-json", type=Path, default=None, metavar="PATH",
                        help="on exit, write every injected fault to PATH as JSON")  # fmt: skip
    add_common_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from quotewatch.ingest.client import FeedClient
    from quotewatch.ingest.parser import Feed
    from quotewatch.simulate.faults import Faults
    from quotewatch.simulate.market import UnknownProductError, spec_for
    from quotewatch.simulate.server import LocalExchange

    try:
        settings = Settings.resolve(args)
        for product in settings.products:
            spec_for(product)
    except (ConfigError, UnknownProductError) as exc:
        log.error("%s", exc)
        return 2
    feed = Feed(settings.feed)

    def make_feed(runner: Runner) -> Callable[[], Awaitable[object]]:
        async def local_feed() -> None:
            faults = Faults(drop_matches=args.drop_matches)
            exchange = LocalExchange(
                settings.products, seed=args.seed, rate=args.rate, faults=faults
            )
            try:
                async with exchange as ex:
                    url = ex.exchange_url if feed is Feed.EXCHANGE else ex.advanced_url
                    print(f"local exchange: {url}", flush=True)
                    runner.backfill_from(ex.rest_url)
                    await FeedClient(runner.session, url=url).run()
            finally:  # the feed ends by cancellation: write what was injected even then
                if args.faults_json is not None:
                    text = json.dumps(exchange.injected.as_dict(), indent=2)
                    args.faults_json.write_text(text + "\n", encoding="utf-8")

        return local_feed

    return execute(
        args, settings, feed, make_feed, label_threshold=LIVE_LABEL_THRESHOLD, source="local"
    )
