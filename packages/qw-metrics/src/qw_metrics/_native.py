"""The C fast paths (`_speedups.c`), if this install could compile them.

Where it could not (no C compiler or Python headers), `BUILT` is False and qw_metrics takes its
pure-Python paths, which record exactly the same values.
"""

from __future__ import annotations

try:
    from ._speedups import Counts, ObservedCall

    BUILT = True
except ImportError:
    BUILT = False

__all__ = ["BUILT", "Counts", "ObservedCall", "native_speedups"]


def native_speedups() -> bool:
    """Whether this install runs `timed` and `recorded` through the C fast path."""
    return BUILT
