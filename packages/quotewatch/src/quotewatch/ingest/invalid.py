"""Why a feed message was rejected, and rate-limited logging of rejections.

Every rejected message becomes an `Invalid` result naming a typed `InvalidReason`; the parser's
decorator counts it in ``coinbase_messages_invalid_total{reason}``.
"""

from __future__ import annotations

import logging
import reprlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class InvalidReason(StrEnum):
    """The typed reasons a feed message is skipped (the ``reason`` label)."""

    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    BAD_PRICE = "bad_price"
    BAD_SIZE = "bad_size"
    BAD_TIME = "bad_time"
    BAD_SIDE = "bad_side"
    BAD_ID = "bad_id"
    ID_OUT_OF_RANGE = "id_out_of_range"
    UNSUBSCRIBED_PRODUCT = "unsubscribed_product"


class _Brief(reprlib.Repr):
    """reprlib's limits, plus a cap on integers: ``repr`` refuses ints of over 4300 digits."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_BRIEF = _Brief()
# Three levels and a few items say what was wrong; the builtin repr recurses into every level
# and raises RecursionError on a frame nested ~1000 deep.
_BRIEF.maxlevel = 3
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = 4
_BRIEF.maxstring = _BRIEF.maxother = 60
BRIEF_MAX = 120


def brief(value: Any) -> str:
    """A repr of a decoded JSON value limited in depth and length: safe for any frame."""
    try:
        text = _BRIEF.repr(value)
    except Exception:  # a type whose own repr fails; the type name still says what it was
        text = f"<{type(value).__name__}>"
    return text if len(text) <= BRIEF_MAX else text[: BRIEF_MAX - 3] + "..."


class BadMessage(Exception):
    """Raised inside the parsers; turned into an `Invalid` result at the top."""

    def __init__(self, reason: InvalidReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Invalid:
    """A skipped frame: its message type (or ``"unknown"``), the reason and a short detail.

    ``sequence_num`` is the Advanced Trade envelope's counter when it could still be read, so a
    malformed frame does not also show up as a sequence gap.
    """

    type: str
    reason: InvalidReason
    detail: str
    sequence_num: int | None = None


class RateLimitedLog:
    """Logs at most ``burst`` messages per ``interval`` seconds; reports how many it dropped
    (as "<n> <suppressed> suppressed")."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        suppressed: str = "similar messages",
    ) -> None:
        self._logger = logger
        self._suppressed = suppressed
        self._burst = burst
        self._interval = interval
        self._clock = clock
        self._window_start = -float("inf")
        self._logged = 0
        self._dropped = 0

    def warning(self, msg: str, *args: object) -> bool:
        """Log a warning unless the budget is spent; True when it was logged."""
        now = self._clock()
        if now - self._window_start >= self._interval:
            if self._dropped:
                self._logger.warning("%d %s suppressed", self._dropped, self._suppressed)
            self._window_start, self._logged, self._dropped = now, 0, 0
        if self._logged >= self._burst:
            self._dropped += 1
            return False
        self._logged += 1
        self._logger.warning(msg, *args)
        return True
