"""Writer processes: SIGINT flushes, kill -9 keeps commits, two processes share a catalog."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from quotewatch.storage.catalog import CatalogConfig, build_catalog
from quotewatch.storage.spill import recover, spill_files
from quotewatch.storage.tables import ensure_tables
from quotewatch.storage.writer import StorageWriter
from support.storage import SCRIPT, T0_US, trade_ids, wait_for, warehouse_outage


def _start(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(data_dir), *args],
        stdout=subprocess.PIPE,
        text=True,
    )


def _wait_line(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == expected:
            return
    raise AssertionError(f"child exited before printing {expected!r}")


def test_sigint_makes_a_final_flush(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--rows", "300", "--burst", "100", "--then", "wait")
    _wait_line(proc, "done")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["raw_trades"]["written"] == 300
    assert trade_ids(tmp_path) == list(range(300))


def test_kill_9_keeps_commits_and_restart_recovers_spills(tmp_path: Path) -> None:
    ensure_tables(build_catalog(CatalogConfig.resolve(tmp_path)))
    proc = _start(
        tmp_path,
        *("--rows", "100000", "--burst", "20", "--pause", "0.02"),
        *("--flush-rows", "50", "--buffer-rows", "100", "--flush-interval", "0.1"),
    )
    try:
        wait_for(lambda: len(trade_ids(tmp_path)) >= 100, 20, "the child's first commits")
        with warehouse_outage(tmp_path):
            wait_for(lambda: len(spill_files(tmp_path, "raw_trades")) >= 2, 20, "spill files")
            proc.kill()
            proc.wait(timeout=10)
    finally:
        proc.kill()
    committed = trade_ids(tmp_path)
    assert committed == list(range(len(committed)))  # intact, in order, no duplicates

    tables = ensure_tables(build_catalog(CatalogConfig.resolve(tmp_path)))
    recovered = recover(tmp_path, tables)["raw_trades"]
    ids = trade_ids(tmp_path)
    assert recovered >= 100
    assert len(ids) == len(committed) + recovered
    assert len(set(ids)) == len(ids)
    assert ids[: len(committed)] == committed
    assert not spill_files(tmp_path, "raw_trades")


def test_two_processes_appending_through_one_sqlite_catalog_lose_nothing(tmp_path: Path) -> None:
    ensure_tables(build_catalog(CatalogConfig.resolve(tmp_path)))
    options = ("--rows", "240", "--burst", "40", "--pause", "0.15", "--flush-rows", "40")
    first = _start(tmp_path, "--start", "0", *options)
    second = _start(tmp_path, "--start", "240", *options)
    for proc in (first, second):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        counts = json.loads(out.strip().splitlines()[-1])
        assert counts["raw_trades"]["written"] == 240
        assert counts["raw_trades"]["spilled"] == 0
    assert trade_ids(tmp_path) == list(range(480))
    table = build_catalog(CatalogConfig.resolve(tmp_path)).load_table("quotewatch.raw_trades")
    assert len(table.snapshots()) >= 4  # both processes committed several times


@pytest.mark.parametrize("rows", [70_000, 150_000])
def test_close_timing_out_mid_flush_loses_and_duplicates_nothing(tmp_path: Path, rows: int) -> None:
    # One big flush at close (no flush before it) converts and commits for longer than the
    # 1 s timeout allows, so close() takes over from the still-running flusher and spills.
    proc = _start(
        tmp_path,
        *("--table", "raw_orderbook", "--rows", str(rows), "--burst", str(rows), "--pause", "0"),
        *("--flush-rows", "400000", "--buffer-rows", "400000", "--flush-interval", "60"),
        *("--close-timeout", "1.0"),
    )
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    counts = json.loads(out.strip().splitlines()[-1])["raw_orderbook"]
    assert counts["written"] + counts["spilled"] == counts["submitted"] == rows

    restarted = StorageWriter(CatalogConfig.resolve(tmp_path), tmp_path, flush_interval=60.0)
    wait_for(lambda: not spill_files(tmp_path, "raw_orderbook"), 60, "start-up recovery")
    restarted.close(timeout=30)
    times = restarted.read("raw_orderbook").column("event_time").cast(pa.int64()).to_pylist()
    assert sorted(times) == list(range(T0_US, T0_US + rows))
