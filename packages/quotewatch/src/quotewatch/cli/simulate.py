"""`quotewatch simulate`: run the local exchange (both Coinbase feeds on loopback)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path

from quotewatch.cli.arguments import port, positive, probability, products
from quotewatch.simulate.faults import FaultConfigError, Faults
from quotewatch.simulate.market import SPECS, UnknownProductError
from quotewatch.simulate.rest import RestFaults
from quotewatch.simulate.server import LocalExchange

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `simulate` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="run a local simulated Coinbase exchange (Exchange and Advanced Trade feeds)",
        description="Serve a deterministic simulated market over the Coinbase Exchange and "
        "Advanced Trade websocket protocols on loopback, with optional fault injection. "
        "Prints one URL per protocol and runs until Ctrl-C or --duration.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=port, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--products",
        type=products,
        default=("BTC-USD", "ETH-USD"),
        help=f"comma-separated products (default BTC-USD,ETH-USD; known: {','.join(SPECS)})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--rate", type=positive, default=1.0, help="order-flow multiplier (default 1: realistic)"
    )
    parser.add_argument("--depth", type=int, default=1000, help="book levels per side at start")
    parser.add_argument("--speed", type=positive, default=1.0, help="simulated seconds per second")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--drop-matches", type=probability, default=0.0, metavar="P",
                        help="drop each trade at the source with probability P")  # fmt: skip
    faults.add_argument("--drop-frames", type=probability, default=0.0, metavar="P",
                        help="drop each streamed frame with probability P")  # fmt: skip
    faults.add_argument("--disconnect-every", type=float, default=None, metavar="S",
                        help="close every connection S seconds after it opens")  # fmt: skip
    faults.add_argument("--malformed", type=probability, default=0.0, metavar="P",
                        help="add a malformed frame after a frame, probability P")  # fmt: skip
    faults.add_argument("--duplicates", type=probability, default=0.0, metavar="P",
                        help="send each streamed frame twice with probability P")  # fmt: skip
    faults.add_argument("--burst-factor", type=float, default=1.0, metavar="N",
                        help="order flow runs N times faster during bursts")  # fmt: skip
    faults.add_argument("--burst-every", type=float, default=None, metavar="S",
                        help="a burst starts every S simulated seconds")  # fmt: skip
    faults.add_argument("--burst-duration", type=float, default=0.0, metavar="S",
                        help="each burst lasts S simulated seconds")  # fmt: skip
    faults.add_argument("--rest-errors", type=probability, default=0.0, metavar="P",
                        help="answer each REST request with a 503 with probability P")  # fmt: skip
    faults.add_argument("--rest-throttle", type=probability, default=0.0, metavar="P",
                        help="answer each REST request with a 429 (Retry-After: 1) with "
                        "probability P, beside the real 10 requests/s limit")  # fmt: skip
    faults.add_argument("--rest-delay", type=float, default=0.0, metavar="S",
                        help="delay every REST response by S seconds")  # fmt: skip
    faults.add_argument("--faults-json", type=Path, default=None, metavar="PATH",
                        help="on exit, write every injected fault to PATH as JSON")  # fmt: skip
    parser.add_argument("--duration", type=positive, default=None, metavar="S",
                        help="stop after S seconds (default: run until Ctrl-C)")  # fmt: skip
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the local exchange until Ctrl-C or --duration."""
    try:
        faults = Faults(
            drop_matches=args.drop_matches,
            drop_frames=args.drop_frames,
            disconnect_every=args.disconnect_every,
            malformed=args.malformed,
            duplicates=args.duplicates,
            burst_factor=args.burst_factor,
            burst_every=args.burst_every,
            burst_duration=args.burst_duration,
        )
        exchange = LocalExchange(
            args.products,
            seed=args.seed,
            rate=args.rate,
            depth=args.depth,
            faults=faults,
            host=args.host,
            port=args.port,
            speed=args.speed,
            rest_faults=RestFaults(args.rest_errors, args.rest_throttle, args.rest_delay),
        )
    except (FaultConfigError, UnknownProductError, ValueError) as exc:
        log.error("quotewatch simulate: %s", exc)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(exchange, args.duration, args.faults_json))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run only this command: `python -m quotewatch.cli.simulate [flags]` starts quicker than
    the full `quotewatch` command line, which imports every command."""
    parser = argparse.ArgumentParser(prog="quotewatch")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["simulate", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    status: int = args.handler(args)
    return status


async def _serve(exchange: LocalExchange, duration: float | None, faults_json: Path | None) -> None:
    try:
        async with exchange:
            print(f"exchange {exchange.exchange_url}", flush=True)
            print(f"advanced {exchange.advanced_url}", flush=True)
            print(f"rest {exchange.rest_url}", flush=True)
            if duration is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(duration)
    finally:
        if faults_json is not None:
            faults_json.write_text(json.dumps(exchange.injected.as_dict(), indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
