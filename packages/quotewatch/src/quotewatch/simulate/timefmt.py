"""Timestamp strings in the shapes the Coinbase feeds send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _at(time_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=time_us)


def iso_us(time_us: int) -> str:
    """ISO 8601 with microseconds and `Z`: "2022-08-04T15:25:05.010758Z"."""
    return _at(time_us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_ns(time_us: int) -> str:
    """ISO 8601 with nanoseconds and `Z`, as Advanced Trade envelopes carry."""
    return _at(time_us).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def go_time(time_us: int, uptime_us: int) -> str:
    """Go's `time.Time.String()` with its monotonic reading, as Advanced Trade heartbeats carry:
    "2023-06-23 20:31:56.121961000 +0000 UTC m=+91717.525857000"."""
    wall = _at(time_us).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"{wall}000 +0000 UTC m=+{uptime_us // 1_000_000}.{uptime_us % 1_000_000:06d}000"
