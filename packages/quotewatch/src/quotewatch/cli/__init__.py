"""The `quotewatch` command line: one module per command in this package."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import PackageNotFoundError, version

from quotewatch.config import ConfigError
from quotewatch.logs import configure_logging

# Each module named here defines `register(subparsers)`, which adds its sub-command and sets
# `handler(args) -> int` as the parser's default.
COMMANDS: tuple[str, ...] = ("dashboards", "simulate", "record", "replay", "storage", "demo", "run")


# Exit statuses, as the README documents them.
EXIT_OK = 0
EXIT_UNEXPECTED = 1  # a bug: the traceback is printed
EXIT_CANNOT_RUN = 2  # a bad value, a port in use, a file missing, a connection refused
EXIT_ROWS_LOST = 3  # rows neither committed nor spilled (see quotewatch.app.summary)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help unless it says its default already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is False
            or default == argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        shown = ",".join(default) if isinstance(default, tuple) else default
        return f"{text} (default: {shown})".replace("%", "%%")


def _version() -> str:
    try:
        return version("quotewatch")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="quotewatch",
        description="Coinbase market data capture, live price-move model, Iceberg storage "
        "and dashboards. `quotewatch demo` runs everything locally.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log at DEBUG level and show tracebacks of failures")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"quotewatch {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"quotewatch.cli.{name}").register(sub)
    for command in sub.choices.values():
        command.formatter_class = DefaultsHelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `quotewatch` command line and return its exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        status: int = args.handler(args)
    except (OSError, ConfigError) as exc:
        # Expected failures (a port in use, a file missing, a connection refused): one line,
        # the traceback only with -v.
        if args.verbose:
            raise
        logging.getLogger("quotewatch").debug("failed", exc_info=True)
        print(f"quotewatch {args.command}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    return status


if __name__ == "__main__":
    sys.exit(main())
