"""One entry point for both feeds: a raw frame in, a `Parsed` or an `Invalid` result out.

`parse_frame` never raises on bad input. Its decorators count every frame in
``coinbase_messages_received_total{type}`` and every rejected one in
``coinbase_messages_invalid_total{reason}``; rejections are also logged at a limited rate.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from qw_metrics import counted

from quotewatch.events import Event
from quotewatch.ingest import parse_advanced, parse_exchange
from quotewatch.ingest.invalid import BadMessage, Invalid, InvalidReason, RateLimitedLog
from quotewatch.metrics import MESSAGES_INVALID, MESSAGES_RECEIVED

_log = RateLimitedLog(logging.getLogger(__name__))
_decode = json.JSONDecoder().decode


class Feed(StrEnum):
    """Which Coinbase feed a frame comes from."""

    EXCHANGE = "exchange"
    ADVANCED = "advanced"


@dataclass(frozen=True, slots=True)
class Parsed:
    """A valid frame: its message type (``type`` or ``channel``), events and sequence_num."""

    type: str
    events: tuple[Event, ...]
    sequence_num: int | None = None


ParseResult = Parsed | Invalid
Reader = Callable[[dict[str, Any], int], tuple[Event, ...]]


def _exchange(msg: dict[str, Any], received_us: int) -> ParseResult:
    kind = msg.get("type")
    if not isinstance(kind, str) or (reader := parse_exchange.READERS.get(kind)) is None:
        return Invalid("unknown", InvalidReason.UNKNOWN_TYPE, f"type {kind!r}"[:100])
    try:
        return Parsed(kind, reader(msg, received_us))
    except BadMessage as exc:
        return Invalid(kind, exc.reason, exc.detail)


def _advanced(msg: dict[str, Any], received_us: int) -> ParseResult:
    channel = msg.get("channel")
    if channel is None and msg.get("type") == "error":
        return Parsed("error", parse_advanced.error(msg, received_us))
    label = channel if isinstance(channel, str) and channel in parse_advanced.READERS else "unknown"
    # Read the counter first: a frame with bad content still took its sequence_num.
    try:
        seq = msg.get("sequence_num")
        sequence_num = None if seq is None else _sequence_num(seq)
    except BadMessage as exc:
        return Invalid(label, exc.reason, exc.detail)
    reader = parse_advanced.READERS.get(label)
    if reader is None:
        detail = f"channel {channel!r}"[:100]
        return Invalid(label, InvalidReason.UNKNOWN_TYPE, detail, sequence_num)
    try:
        return Parsed(label, reader(msg, received_us), sequence_num)
    except BadMessage as exc:
        return Invalid(label, exc.reason, exc.detail, sequence_num)


def _sequence_num(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise BadMessage(InvalidReason.BAD_ID, f"sequence_num={value!r} is not a non-negative integer")


_BY_FEED = {Feed.EXCHANGE: _exchange, Feed.ADVANCED: _advanced}


def _invalid_labels(result: ParseResult) -> Mapping[str, str] | None:
    return {"reason": result.reason} if isinstance(result, Invalid) else None


@counted(MESSAGES_RECEIVED, labels_from_result=lambda result: {"type": result.type})
@counted(MESSAGES_INVALID, labels_from_result=_invalid_labels)
def parse_frame(frame: str | bytes | dict[str, Any], received_us: int, feed: Feed) -> ParseResult:
    """Parse one frame (raw JSON text or an already decoded object) of ``feed``."""
    if isinstance(frame, dict):
        msg: Any = frame
    else:
        try:
            msg = _decode(frame if isinstance(frame, str) else frame.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            detail = str(exc)[:200]
            _log.warning("skipped a %s frame: %s", feed, detail)
            return Invalid("unknown", InvalidReason.MALFORMED_JSON, detail)
    result: ParseResult
    if not isinstance(msg, dict):
        result = Invalid("unknown", InvalidReason.NOT_AN_OBJECT, type(msg).__name__)
    else:
        result = _BY_FEED[feed](msg, received_us)
    if isinstance(result, Invalid):
        _log.warning("skipped a %s %s frame: %s (%s)", feed, result.type, result.reason,
                     result.detail[:200])  # fmt: skip
    return result


def detect_feed(messages: Iterable[Any]) -> Feed | None:
    """The feed that decoded messages come from, judged by shape (``channel`` envelopes are
    Advanced Trade, ``type`` messages are Exchange); None if nothing recognisable."""
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        if isinstance(msg.get("channel"), str) and "events" in msg:
            return Feed.ADVANCED
        if msg.get("type") in parse_exchange.READERS and msg.get("type") != "error":
            return Feed.EXCHANGE
    return None
