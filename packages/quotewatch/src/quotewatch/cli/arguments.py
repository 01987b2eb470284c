"""Argument types shared by the commands: argparse shows their message next to the flag."""

from __future__ import annotations

import argparse

from quotewatch.config import parse_products


def positive(text: str) -> float:
    """A number > 0 (seconds, rates)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def probability(text: str) -> float:
    """A probability in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text!r}")
    return value


def products(text: str) -> tuple[str, ...]:
    """Comma-separated product ids, e.g. BTC-USD,ETH-USD."""
    try:
        return parse_products(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
