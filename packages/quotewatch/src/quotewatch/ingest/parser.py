"""One entry point for both feeds: a raw frame in, a `Parsed` or an `Invalid` result out.

`parse_frame` never raises on bad input. Every rejected frame is counted in
``coinbase_messages_invalid_total{reason}`` and logged at a limited rate. (Frames received are
counted by type by `FeedSession`, in batches.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
from qw_metrics import counted

from quotewatch.events import Event
from quotewatch.ingest import parse_advanced, parse_exchange
from quotewatch.ingest.invalid import BadMessage, Invalid, InvalidReason, RateLimitedLog, brief
from quotewatch.metrics import MESSAGES_INVALID, start_at_zero

_log = RateLimitedLog(logging.getLogger(__name__))
# orjson: a frame decodes in a third of the stdlib's time, which is a tenth of a message's cost.
# It is also stricter (NaN, lone surrogates, integers beyond 64 bits), and such frames are
# malformed anyway.
_decode = orjson.loads


class Feed(StrEnum):
    """Which Coinbase feed a frame comes from."""

    EXCHANGE = "exchange"
    ADVANCED = "advanced"


class Parsed(NamedTuple):
    """A valid frame: its message type (``type`` or ``channel``), events and sequence_num."""

    type: str
    events: tuple[Event, ...]
    sequence_num: int | None = None


ParseResult = Parsed | Invalid
Reader = Callable[[dict[str, Any], int], tuple[Event, ...]]


def _exchange(msg: dict[str, Any], received_us: int) -> ParseResult:
    kind = msg.get("type")
    if not isinstance(kind, str) or (reader := parse_exchange.READERS.get(kind)) is None:
        return Invalid("unknown", InvalidReason.UNKNOWN_TYPE, f"type {brief(kind)}"[:100])
    try:
        return Parsed(kind, reader(msg, received_us))
    except BadMessage as exc:
        return Invalid(kind, exc.reason, exc.detail)
    except _UNFORESEEN as exc:
        return _unforeseen(kind, exc, None)


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
        detail = f"channel {brief(channel)}"[:100]
        return Invalid(label, InvalidReason.UNKNOWN_TYPE, detail, sequence_num)
    try:
        return Parsed(label, reader(msg, received_us), sequence_num)
    except BadMessage as exc:
        return Invalid(label, exc.reason, exc.detail, sequence_num)
    except _UNFORESEEN as exc:
        return _unforeseen(label, exc, sequence_num)


# The readers validate every field they use; this net catches input shaped in a way nobody
# foresaw, so it is still skipped and counted instead of stopping the feed. The hot loops index
# dicts directly, so there a KeyError means a missing field. RecursionError: a frame nested
# deeper than anything the readers expect must still cost one skipped frame, not the feed.
_UNFORESEEN = (
    TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError, RecursionError
)  # fmt: skip


def _unforeseen(label: str, exc: Exception, sequence_num: int | None) -> Invalid:
    if isinstance(exc, KeyError):
        return Invalid(label, InvalidReason.MISSING_FIELD, f"no {exc}"[:200], sequence_num)
    detail = f"unexpected {type(exc).__name__}: {exc}"[:200]
    return Invalid(label, InvalidReason.BAD_FIELD, detail, sequence_num)


def _sequence_num(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise BadMessage(
        InvalidReason.BAD_ID, f"sequence_num={brief(value)} is not a non-negative integer"
    )


_BY_FEED = {Feed.EXCHANGE: _exchange, Feed.ADVANCED: _advanced}
start_at_zero((MESSAGES_INVALID,), ({"reason": reason} for reason in InvalidReason))


@counted(MESSAGES_INVALID, labels_from_result=lambda invalid: invalid.reason)
def _rejected(invalid: Invalid, feed: Feed) -> Invalid:
    """Count and log (at a limited rate) one skipped frame."""
    _log.warning("skipped a %s %s frame: %s (%s)", feed, invalid.type, invalid.reason,
                 invalid.detail[:200])  # fmt: skip
    return invalid


def parse_frame(frame: str | bytes | dict[str, Any], received_us: int, feed: Feed) -> ParseResult:
    """Parse one frame (raw JSON text or an already decoded object) of ``feed``."""
    if isinstance(frame, dict):
        msg: Any = frame
    else:
        try:
            msg = _decode(frame)
        except ValueError as exc:
            return _rejected(Invalid("unknown", InvalidReason.MALFORMED_JSON, str(exc)), feed)
    if type(msg) is not dict:
        return _rejected(Invalid("unknown", InvalidReason.NOT_AN_OBJECT, type(msg).__name__), feed)
    result = _BY_FEED[feed](msg, received_us)
    if type(result) is Invalid:
        return _rejected(result, feed)
    return result


def detect_feed(messages: Iterable[Any]) -> Feed | None:
    """The feed that decoded messages come from, judged by shape (``channel`` envelopes are
    Advanced Trade, ``type`` messages are Exchange); None if nothing recognisable."""
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        if isinstance(msg.get("channel"), str) and "events" in msg:
            return Feed.ADVANCED
        kind = msg.get("type")
        if isinstance(kind, str) and kind in parse_exchange.READERS and kind != "error":
            return Feed.EXCHANGE
    return None
