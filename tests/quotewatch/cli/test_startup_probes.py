"""An unwritable data dir or spill dir stops the run at start with exit 2 and the fix
(issue 18: it was accepted, every flush and spill failed, all rows were lost, exit 0).

The paths are made unwritable by a file standing where a directory must be, which holds even
for root (permission bits do not)."""

from __future__ import annotations

from pathlib import Path

import pytest
from quotewatch.cli import main
from quotewatch.config import ConfigError, Settings
from quotewatch.startup import probe_storage


def test_a_writable_data_dir_passes(tmp_path: Path) -> None:
    probe_storage(Settings(data_dir=tmp_path / "data"))
    assert (tmp_path / "data" / "spill").is_dir()
    assert list((tmp_path / "data").iterdir()) == [tmp_path / "data" / "spill"]


def test_an_unwritable_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"data dir .* is not writable"):
        probe_storage(Settings(data_dir=tmp_path / "file" / "data"))


def test_an_unwritable_spill_dir_stops_the_run_with_exit_2(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "spill").write_text("not a directory")
    status = main(["demo", "--duration", "1", "--no-dashboard", "--port", "0",
                   "--data-dir", str(data)])  # fmt: skip
    assert status == 2
    [error] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "spill dir" in error.getMessage()
    assert "is not writable" in error.getMessage()
    assert "--data-dir" in error.getMessage()
    assert error.exc_info is None
