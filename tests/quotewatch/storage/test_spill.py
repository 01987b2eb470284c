"""Outages spill to Parquet; recovery appends every spill file exactly once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from prometheus_client import REGISTRY
from quotewatch.rows import TABLE_NAMES
from quotewatch.storage.catalog import CatalogConfig, build_catalog
from quotewatch.storage.commit import commit_batches
from quotewatch.storage.reconcile import summary
from quotewatch.storage.spill import recover, spill_files, write_spill
from quotewatch.storage.tables import ensure_tables
from quotewatch.storage.writer import StorageWriter
from support.storage import trade, trade_ids, trades_batch, wait_for, warehouse_outage


def _metric(name: str, table: str = "raw_trades") -> float:
    return REGISTRY.get_sample_value(name, {"table": table}) or 0.0


def test_outage_spills_then_recovers_without_duplicates(tmp_path: Path) -> None:
    names = (
        "iceberg_rows_written_total",
        "iceberg_flush_errors_total",
        "iceberg_spilled_rows_total",
        "iceberg_flush_total",
    )
    before = {name: _metric(name) for name in names}
    writer = StorageWriter(
        CatalogConfig.resolve(tmp_path),
        tmp_path,
        flush_rows=20,
        buffer_rows=40,
        flush_interval=0.1,
    )
    for i in range(30):
        writer.submit_trade(trade(i))
    wait_for(lambda: writer.counts()["raw_trades"].written == 30, 10, "the first commit")

    with warehouse_outage(tmp_path):
        for i in range(30, 130):
            writer.submit_trade(trade(i))
        wait_for(lambda: spill_files(tmp_path, "raw_trades"), 10, "a spill file")
        wait_for(lambda: writer.counts()["raw_trades"].spilled >= 60, 10, "more spilled rows")
        # Nothing was committed since: every row submitted since is still held (spilled to disk
        # or in memory awaiting a retry), so it counts as pending, not missing.
        assert writer.counts()["raw_trades"].written == 30
        assert writer.rows_held()["raw_trades"] == 100

    for i in range(130, 150):
        writer.submit_trade(trade(i))
    counts = writer.close(timeout=20)
    assert writer.rows_held() == dict.fromkeys(TABLE_NAMES, 0)

    assert trade_ids(tmp_path) == list(range(150))
    assert not spill_files(tmp_path, "raw_trades")
    assert counts["raw_trades"].written == 150
    assert summary(writer)["completeness"]["raw_trades"] == 1.0
    delta = {name: _metric(name) - before[name] for name in names}
    assert delta["iceberg_rows_written_total"] == 150
    assert delta["iceberg_spilled_rows_total"] == counts["raw_trades"].spilled >= 60
    assert delta["iceberg_flush_errors_total"] >= 1
    assert delta["iceberg_flush_total"] >= 2
    assert (REGISTRY.get_sample_value("storage_writer_buffer_capacity") or 0) >= 160


def test_crash_between_commit_and_spill_delete_does_not_duplicate(tmp_path: Path) -> None:
    tables = ensure_tables(build_catalog(CatalogConfig.resolve(tmp_path)))
    batch = trades_batch(range(10))
    assert [b.batch_id for b in commit_batches(tables["raw_trades"], [batch])] == [batch.batch_id]
    # The process spilled the same batch, committed it, and died before deleting the file.
    write_spill(tmp_path, batch)
    pending = trades_batch(range(10, 15))
    write_spill(tmp_path, pending)

    assert recover(tmp_path, tables)["raw_trades"] == 5
    assert trade_ids(tmp_path) == list(range(15))
    assert not spill_files(tmp_path, "raw_trades")
    assert recover(tmp_path, tables)["raw_trades"] == 0


def test_retry_after_unknown_outcome_does_not_append_twice(tmp_path: Path) -> None:
    tables = ensure_tables(build_catalog(CatalogConfig.resolve(tmp_path)))
    batch = trades_batch(range(7))
    commit_batches(tables["raw_trades"], [batch])
    batch.attempted = True  # as if the commit raised after landing
    assert commit_batches(tables["raw_trades"], [batch]) == []
    assert trade_ids(tmp_path) == list(range(7))


def test_close_during_outage_spills_everything_and_a_restart_recovers(tmp_path: Path) -> None:
    config = CatalogConfig.resolve(tmp_path)
    ensure_tables(build_catalog(config))
    writer = StorageWriter(config, tmp_path, flush_interval=60.0)
    with warehouse_outage(tmp_path):
        for i in range(25):
            writer.submit_trade(trade(i))
        counts = writer.close(timeout=10)
    assert counts["raw_trades"].spilled == 25
    assert summary(writer)["completeness"]["raw_trades"] == 0.0
    assert trade_ids(tmp_path) == []

    restarted = StorageWriter(config, tmp_path, flush_interval=60.0)
    wait_for(lambda: not spill_files(tmp_path, "raw_trades"), 10, "start-up recovery")
    assert restarted.close(timeout=10)["raw_trades"].recovered == 25
    assert trade_ids(tmp_path) == list(range(25))


def test_close_takes_over_from_a_stuck_commit_and_it_landing_later_duplicates_nothing(
    tmp_path: Path,
) -> None:
    config = CatalogConfig.resolve(tmp_path)
    writer = StorageWriter(config, tmp_path, flush_interval=60.0)
    assert writer.flush(timeout=30)  # tables created and open
    for i in range(100):
        writer.submit_trade(trade(i))
    catalog_lock = sqlite3.connect(tmp_path / "catalog.db", isolation_level=None)
    catalog_lock.execute("BEGIN EXCLUSIVE")  # the final flush's commit now waits on the catalog
    try:
        started = time.monotonic()
        counts = writer.close(timeout=1.0)
        assert time.monotonic() - started < 3.0
        assert (counts["raw_trades"].written, counts["raw_trades"].spilled) == (0, 100)
        assert spill_files(tmp_path, "raw_trades")
    finally:
        catalog_lock.execute("ROLLBACK")
        catalog_lock.close()
    wait_for(lambda: not writer._thread.is_alive(), 30, "the abandoned flusher's commit")
    assert trade_ids(tmp_path) == list(range(100))  # its commit landed after all

    restarted = StorageWriter(config, tmp_path, flush_interval=60.0)
    wait_for(lambda: not spill_files(tmp_path, "raw_trades"), 10, "start-up recovery")
    assert restarted.close(timeout=10)["raw_trades"].recovered == 0
    assert trade_ids(tmp_path) == list(range(100))
