"""Run the histogram, timed and recorded tests on both of qw_metrics' paths: C and pure Python."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from qw_metrics import _values, _wrappers


@pytest.fixture(params=[pytest.param("c", marks=pytest.mark.speedups), "python"])
def implementation(request: pytest.FixtureRequest) -> Iterator[str]:
    """Histograms created in the test keep their counts in C, or in pure-Python shards."""
    with pytest.MonkeyPatch.context() as patch:
        # Each run logs its own instrumentation failures, once per site.
        patch.setattr(_wrappers, "_reported", set())
        if request.param == "python":
            patch.setattr(_values, "BUILT", False)
        yield request.param
