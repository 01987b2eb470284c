"""The QW_METRICS_DISABLED switch."""

from __future__ import annotations

import os

DISABLED_ENV = "QW_METRICS_DISABLED"


def instrumentation_disabled() -> bool:
    """True when QW_METRICS_DISABLED is set to 1/true/yes: instrumentation becomes pass-through."""
    return os.environ.get(DISABLED_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
