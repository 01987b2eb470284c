"""An unwritable data dir or spill dir, or a local SQLite catalog that cannot be opened, stops
the run at start with exit 2 and the fix (issue 18: it was accepted, every flush and spill
failed, all rows were lost, exit 0). A remote catalog that does not answer is one line, and the
run goes on spilling.

The paths are made unwritable by a file standing where a directory must be, which holds even
for root (permission bits do not)."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from quotewatch.cli import main
from quotewatch.config import ConfigError, Settings
from quotewatch.startup import probe_catalog, probe_storage

SECRET = "s3cret-Pw"
QUOTEWATCH = str(Path(sys.executable).with_name("quotewatch"))


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_writable_data_dir_passes(tmp_path: Path) -> None:
    probe_storage(Settings(data_dir=tmp_path / "data"))
    assert (tmp_path / "data" / "spill").is_dir()
    assert not list((tmp_path / "data").rglob(".qw-probe-*"))
    # The embedded catalog was opened, so the run's first flush need not find out.
    assert (tmp_path / "data" / "catalog.db").is_file()


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


@pytest.mark.parametrize("kind", ["directory", "not a database"])
def test_a_sqlite_catalog_that_cannot_be_opened_stops_the_run_with_exit_2(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = tmp_path / "catalog.db"
    if kind == "directory":
        catalog.mkdir()
    else:
        catalog.write_text("not a database")
    status = main(["demo", "--duration", "1", "--no-dashboard", "--port", "0",
                   "--data-dir", str(tmp_path / "data"),
                   "--catalog-uri", f"sqlite:///{catalog}"])  # fmt: skip
    assert status == 2
    [error] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert f"SQLite catalog {str(catalog)!r} cannot be opened" in error.getMessage()
    assert "--catalog-uri" in error.getMessage()
    assert error.exc_info is None


def test_a_rest_catalog_that_refuses_is_one_warning(
    tmp_path: Path, refused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"http://qw:{SECRET}@127.0.0.1:{refused_port}/catalog"
    with caplog.at_level(logging.WARNING, logger="quotewatch.startup"):
        probe_catalog(Settings(data_dir=tmp_path, catalog_uri=uri))
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        f"catalog at http://qw:***@127.0.0.1:{refused_port}/catalog is unreachable ("
    )
    assert line.endswith(f"): rows will spill to {tmp_path / 'spill'} until it answers")
    assert SECRET not in line
    assert "\n" not in line


def test_a_catalog_that_never_answers_is_given_up_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as server:  # accepts connections (the backlog) but never replies
        server.bind(("127.0.0.1", 0))
        server.listen()
        uri = f"http://127.0.0.1:{server.getsockname()[1]}/"
        with caplog.at_level(logging.WARNING, logger="quotewatch.startup"):
            probe_catalog(Settings(data_dir=tmp_path, catalog_uri=uri), timeout=0.5)
    [line] = [r.getMessage() for r in caplog.records]
    assert f"catalog at {uri} is unreachable (no answer within 0.5 s)" in line


def test_a_postgres_catalog_that_refuses_is_one_line_and_the_run_spills(
    tmp_path: Path, refused_port: int
) -> None:
    pytest.importorskip("psycopg2", reason="needs the Postgres driver: quotewatch[postgres]")
    data, summary = tmp_path / "data", tmp_path / "summary.json"
    uri = f"postgresql+psycopg2://qw:{SECRET}@127.0.0.1:{refused_port}/iceberg"
    command = [QUOTEWATCH, "demo", "--duration", "4", "--no-dashboard", "--port", "0",
               "--data-dir", str(data), "--catalog-uri", uri, "--flush-interval", "1",
               "--summary-json", str(summary)]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    # It kept running to --duration and ended with every row spilled: nothing lost, exit 0.
    assert run.returncode == 0, run.stderr
    redacted = f"postgresql+psycopg2://qw:***@127.0.0.1:{refused_port}/iceberg"
    lines = [line for line in run.stderr.splitlines() if "is unreachable" in line]
    assert len(lines) == 1, run.stderr
    assert f"catalog at {redacted} is unreachable (" in lines[0]
    assert lines[0].endswith(f"rows will spill to {data / 'spill'} until it answers")
    assert "Traceback" not in run.stderr
    assert SECRET not in run.stderr + run.stdout
    storage = json.loads(summary.read_text())["storage"]
    assert storage["rows_written"]["raw_orderbook"] == 0
    assert storage["rows_spilled"]["raw_orderbook"] > 0
    assert list((data / "spill" / "raw_orderbook").glob("*.parquet"))
