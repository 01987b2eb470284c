"""A probe that measures how late the event loop runs a periodic callback."""

from __future__ import annotations

import asyncio
import time

from qw_metrics import recorded

from quotewatch.metrics import EVENT_LOOP_LAG


@recorded(EVENT_LOOP_LAG, value=lambda lag: lag)
def _report_lag(lag: float) -> float:
    return lag


async def probe_loop_lag(interval: float = 0.1) -> None:
    """Sleep `interval` seconds forever, recording how much later than asked each wake-up is.

    A large lag means something blocked the loop (a slow callback, blocking I/O); the feed
    stalls for at least that long.
    """
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        _report_lag(max(0.0, time.perf_counter() - start - interval))
