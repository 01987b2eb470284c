"""prometheus_client's multiprocess mode is refused when qw_metrics is imported, with the reason:
the lean metrics' in-process values would be missing from a multiprocess scrape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_multiprocess_mode_is_refused_at_import_with_the_reason(tmp_path: Path) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", "import qw_metrics"], env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "MultiprocessModeError" in done.stderr
    assert "PROMETHEUS_MULTIPROC_DIR is set" in done.stderr
    plain = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    ok = subprocess.run([sys.executable, "-c", "import qw_metrics"], env=plain, check=False)
    assert ok.returncode == 0
