"""When to retry a remote-write request and how long to wait first (Remote Write 1.0 rules)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from qw_metrics.errors import RemoteWriteConfigError


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff as Prometheus does it: 30 ms doubling up to 5 s, plus jitter."""

    initial: float = 0.03
    maximum: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise RemoteWriteConfigError(
                f"Backoff(initial={self.initial!r}, maximum={self.maximum!r}); "
                "need 0 < initial <= maximum"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): half fixed, half random."""
        base = min(self.maximum, self.initial * 2.0 ** min(attempt - 1, 32))
        # Jitter spreads the retries of many senders hitting one receiver after an outage.
        return base / 2 + random.uniform(0.0, base / 2)


def is_retryable(status: int) -> bool:
    """5xx and 429 are retried; every other non-2xx status drops the batch."""
    return status == 429 or 500 <= status <= 599


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), or None if
    the header is missing or unreadable; ``now`` is the wall clock (default ``time.time()``)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
