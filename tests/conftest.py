"""Shared test set-up: markers for tests that need an outside program."""

from __future__ import annotations

import os
import shutil

import pytest

# marker -> (programs it needs on PATH, the Debian packages that provide them)
EXTERNAL_PROGRAMS = {
    "prometheus": (("prometheus", "promtool"), "prometheus"),
    "chromium": (("chromium", "chromedriver"), "chromium chromium-driver"),
}


def _missing(marker: str) -> str | None:
    """Why a test with `marker` cannot run here, or None."""
    if marker == "postgres":
        from support.postgres import postgres_bin

        return None if postgres_bin() else "needs initdb and pg_ctl: apt-get install postgresql"
    programs, packages = EXTERNAL_PROGRAMS[marker]
    missing = [p for p in programs if shutil.which(p) is None]
    return f"needs {', '.join(missing)} on PATH: apt-get install {packages}" if missing else None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in (*EXTERNAL_PROGRAMS, "postgres"):
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing(marker)
        if reason is None:
            continue
        # .ci/run installs these programs and sets QW_REQUIRE_EXTERNAL=1, so a skip there is a bug.
        if os.environ.get("QW_REQUIRE_EXTERNAL") == "1":
            pytest.fail(f"QW_REQUIRE_EXTERNAL=1 but this test {reason}", pytrace=False)
        pytest.skip(reason)
    if item.get_closest_marker("speedups") is not None and not _speedups_built():
        reason = (
            "needs qw_metrics' C extension, compiled at install when a C compiler is present: "
            "apt-get install gcc libc6-dev, then uv sync --reinstall-package qw-metrics"
        )
        if os.environ.get("QW_REQUIRE_EXTERNAL") == "1":
            pytest.fail(f"QW_REQUIRE_EXTERNAL=1 but this test {reason}", pytrace=False)
        pytest.skip(reason)
    if item.get_closest_marker("soak") is not None and os.environ.get("QW_SOAK") != "1":
        pytest.skip("soak test: set QW_SOAK=1 to run it")


def _speedups_built() -> bool:
    from qw_metrics import _values

    return _values.BUILT
