"""The `quotewatch` command line: one module per command in this package."""

from __future__ import annotations

import argparse
import importlib
import sys

from quotewatch.logs import configure_logging

# Each module named here defines `register(subparsers)`, which adds its sub-command and sets
# `handler(args) -> int` as the parser's default.
COMMANDS: tuple[str, ...] = ("dashboards", "simulate", "record", "replay", "storage", "demo", "run")


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="quotewatch",
        description="Coinbase market data capture, live price-move model, Iceberg storage "
        "and dashboards. `quotewatch demo` runs everything locally.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"quotewatch.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `quotewatch` command line and return its exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
