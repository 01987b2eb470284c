"""The event-loop lag probe: how late the feed's loop wakes up a periodic sleep, recorded in
`pipeline_event_loop_lag_seconds`. A large lag means something blocked the loop (a slow
callback, blocking I/O); the feed stalls for at least that long."""

from __future__ import annotations

import asyncio
import time

from qw_metrics import recorded

from quotewatch.metrics import EVENT_LOOP_LAG


@recorded(EVENT_LOOP_LAG, value=float)
async def sleep_late(interval: float) -> float:
    """Sleep `interval` seconds; return how much later than asked the loop woke up."""
    start = time.perf_counter()
    await asyncio.sleep(interval)
    return max(0.0, time.perf_counter() - start - interval)


async def probe_loop_lag(interval: float = 0.1) -> None:
    """Sleep `interval` seconds at a time, forever, recording each wake-up's lag."""
    while True:
        await sleep_late(interval)
