"""Timing helper shared by bench_remote_write.py and its OpenTelemetry peer, which runs in an
isolated environment and so can import only the standard library and this file."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(func: Callable[[], object], rounds: int) -> float:
    """Median of `rounds` calls of `func`, in this thread's CPU seconds."""
    times = []
    for _ in range(rounds):
        started = time.thread_time()
        func()
        times.append(time.thread_time() - started)
    return statistics.median(times)
