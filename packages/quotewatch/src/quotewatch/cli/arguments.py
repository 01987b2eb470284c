"""Argument types shared by the commands: argparse shows their message next to the flag."""

from __future__ import annotations

import argparse
import math

from quotewatch.config import parse_products


def number(text: str) -> float:
    """A finite number; the message names the value instead of argparse's "invalid float"."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive(text: str) -> float:
    """A finite number > 0 (seconds, rates)."""
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 (any free) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 0 to 65535, got {text!r}")
    return value


def probability(text: str) -> float:
    """A probability in [0, 1]."""
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text!r}")
    return value


def products(text: str) -> tuple[str, ...]:
    """Comma-separated product ids, e.g. BTC-USD,ETH-USD."""
    try:
        return parse_products(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
