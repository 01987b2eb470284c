"""Strict readers for message fields: each returns a clean value or raises `BadMessage`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from quotewatch.ingest.invalid import BadMessage, InvalidReason, brief

_ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
# Coinbase opened in 2012; anything outside this range is a placeholder such as 0001-01-01.
_MIN_YEAR, _MAX_YEAR = 2000, 2099


def require(msg: dict[str, Any], name: str) -> Any:
    """The field's value; a missing field is a `MISSING_FIELD`."""
    try:
        return msg[name]
    except KeyError:
        raise BadMessage(InvalidReason.MISSING_FIELD, f"no {name!r}") from None


def text(msg: dict[str, Any], name: str) -> str:
    """A non-empty string field."""
    value = require(msg, name)
    if not isinstance(value, str) or not value:
        raise BadMessage(
            InvalidReason.BAD_FIELD, f"{name}={brief(value)} is not a non-empty string"
        )
    return value


def items(value: Any, name: str) -> list[Any]:
    """A JSON array field's value."""
    if not isinstance(value, list):
        raise BadMessage(InvalidReason.BAD_FIELD, f"{name} is not a list")
    return value


def strings(value: Any, name: str) -> tuple[str, ...]:
    """A JSON array of strings (e.g. product ids)."""
    values = items(value, name)
    for item in values:
        if type(item) is not str:
            raise BadMessage(InvalidReason.BAD_FIELD, f"{name} item {brief(item)} is not a string")
    return tuple(values)


def loose_text(value: Any) -> str:
    """Free text such as an error message: a string as is, anything else in brief ("" if
    absent)."""
    if value is None:
        return ""
    return value if type(value) is str else brief(value)


def price(value: Any) -> Decimal:
    """A price: a finite decimal string > 0 (NaN, infinities and "0.-10000" are rejected)."""
    if type(value) is str:
        try:
            number = Decimal(value)
            # An ordering comparison with NaN raises InvalidOperation.
            if number > _ZERO and number.is_finite():
                return number
        except InvalidOperation:
            pass
    raise BadMessage(InvalidReason.BAD_PRICE, f"{brief(value)} is not a finite decimal string > 0")


def size(value: Any) -> Decimal:
    """A size: a finite decimal string >= 0 (0 removes a level)."""
    if type(value) is str:
        try:
            number = Decimal(value)
            if number >= _ZERO and number.is_finite():
                return number
        except InvalidOperation:
            pass
    raise BadMessage(InvalidReason.BAD_SIZE, f"{brief(value)} is not a finite decimal string >= 0")


def trade_size(value: Any) -> Decimal:
    """A trade size: a finite decimal string > 0."""
    number = size(value)
    if number == _ZERO:
        raise BadMessage(InvalidReason.BAD_SIZE, f"{brief(value)}: a trade size must be > 0")
    return number


def integer(value: Any, name: str) -> int:
    """A non-negative integer id, given as a JSON integer or a string of digits."""
    if type(value) is int and value >= 0:
        return value
    if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 20:
        return int(value)
    raise BadMessage(InvalidReason.BAD_ID, f"{name}={brief(value)} is not a non-negative integer")


# Exchange times are "YYYY-MM-DDTHH:MM:SS.ffffffZ" and many share their second, so the seconds
# part is parsed once and cached: the whole parse then costs a third as much.
_SECONDS: dict[str, int] = {}
_FAST_LEN = 27


def time_us(value: Any) -> int:
    """Microseconds since the epoch from an RFC 3339 time (or Go's time.String() form)."""
    if type(value) is str and len(value) == _FAST_LEN and value[26] == "Z" and value[19] == ".":
        fraction = value[20:26]
        if fraction.isdigit() and fraction.isascii():
            seconds = _SECONDS.get(value[:19])
            if seconds is None:
                seconds = _seconds(value[:19])
            return seconds + int(fraction)
    return _time_us(value)


def _seconds(head: str) -> int:
    """Epoch microseconds of "YYYY-MM-DDTHH:MM:SS" (UTC), cached."""
    if len(_SECONDS) >= 4096:
        _SECONDS.clear()
    seconds = _SECONDS[head] = _time_us(head + "Z")
    return seconds


def _time_us(value: Any) -> int:
    if not isinstance(value, str):
        raise BadMessage(InvalidReason.BAD_TIME, f"{brief(value)} is not a time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = _go_time(value)
    if not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
        raise BadMessage(InvalidReason.BAD_TIME, f"{brief(value)} is not a plausible time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _ONE_US


def _go_time(value: str) -> datetime:
    """Go's time.String() form, as Advanced Trade heartbeats carry it:
    "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105"."""
    head, sep, _ = value.partition(" +0000 UTC")
    if sep:
        try:
            return datetime.fromisoformat(head)
        except ValueError:
            pass
    raise BadMessage(InvalidReason.BAD_TIME, f"{brief(value)} is not a time")
