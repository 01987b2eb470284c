"""Logging for failures inside instrumentation, which must never reach instrumented code."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("qw_metrics")

_reported: set[str] = set()
_lock = threading.Lock()


def report_once(site: str, message: str, exc: BaseException | None = None) -> None:
    """Log `exc`, or else the exception being handled, once per `site`, with `message`."""
    with _lock:
        if site in _reported:
            return
        _reported.add(site)
    logger.warning("%s (%s; logged once)", message, site, exc_info=exc or True)
