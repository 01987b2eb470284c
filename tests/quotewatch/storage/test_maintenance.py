"""Compaction, expiry and the `quotewatch storage` command line on a real catalog."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest
from quotewatch.cli import storage as storage_cli
from quotewatch.storage import maintenance
from quotewatch.storage.catalog import CatalogConfig, StorageConfigError, build_catalog, redact
from quotewatch.storage.commit import (
    commit_batches,
    committed_batch_ids,
    committed_position,
    new_batch_id,
)
from quotewatch.storage.spill import spill_files, write_spill
from quotewatch.storage.tables import ensure_tables
from support.storage import T0_US, read_table, trade_ids, trades_batch


def main(argv: list[str]) -> int:
    """Run `quotewatch storage ...` without importing the other commands (faster)."""
    parser = argparse.ArgumentParser(prog="quotewatch")
    storage_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


DAY = dt.datetime.fromtimestamp(T0_US / 1e6, dt.UTC).date()


def _three_small_commits(data_dir: Path) -> None:
    table = ensure_tables(build_catalog(CatalogConfig.resolve(data_dir)))["raw_trades"]
    for start in (0, 10, 20):
        batch = trades_batch(range(start, start + 10))
        commit_batches(table, [batch])


def test_compact_rewrites_a_day_into_one_file_per_product_with_the_same_rows(
    tmp_path: Path,
) -> None:
    _three_small_commits(tmp_path)
    before = sorted(read_table(tmp_path, "raw_trades"), key=lambda r: r["trade_id"])  # type: ignore[arg-type, return-value]
    catalog = build_catalog(CatalogConfig.resolve(tmp_path))

    [result] = maintenance.compact(catalog, DAY, ("raw_trades",))

    assert (result.rows, result.files_before, result.files_after) == (30, 3, 1)
    after = sorted(read_table(tmp_path, "raw_trades"), key=lambda r: r["trade_id"])  # type: ignore[arg-type, return-value]
    assert after == before
    table = catalog.load_table("quotewatch.raw_trades")
    assert len(table.inspect.files()) == 1
    # A second run has nothing to do.
    [again] = maintenance.compact(catalog, DAY, ("raw_trades",))
    assert (again.files_before, again.files_after) == (1, 1)


def test_the_frame_log_position_outlives_compaction_and_expiry(tmp_path: Path) -> None:
    table = ensure_tables(build_catalog(CatalogConfig.resolve(tmp_path)))["raw_trades"]
    for start, position in ((0, 41), (10, 97)):
        batch = trades_batch(range(start, start + 10))
        batch.position = position
        commit_batches(table, [batch])
    catalog = build_catalog(CatalogConfig.resolve(tmp_path))
    maintenance.compact(catalog, DAY, ("raw_trades",))
    maintenance.expire(catalog, dt.timedelta(0), ("raw_trades",))
    table = catalog.load_table("quotewatch.raw_trades")
    assert len(table.metadata.snapshots) == 1  # only the compaction's is left
    assert committed_position(table) == 97


def test_expire_drops_old_snapshots_but_keeps_the_data(tmp_path: Path) -> None:
    _three_small_commits(tmp_path)
    catalog = build_catalog(CatalogConfig.resolve(tmp_path))
    expired = maintenance.expire(catalog, dt.timedelta(0), ("raw_trades",))
    assert expired == {"raw_trades": 2}
    assert trade_ids(tmp_path) == list(range(30))


def test_cli_recover_tables_head_and_expire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _three_small_commits(tmp_path)
    write_spill(tmp_path, trades_batch(range(30, 35)))
    common = ["--data-dir", str(tmp_path)]

    assert main(["storage", "recover", *common]) == 0
    assert "raw_trades: 5 rows appended" in capsys.readouterr().out
    assert trade_ids(tmp_path) == list(range(35))

    assert main(["storage", "tables", *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    [trades_line] = [line for line in lines if line.startswith("raw_trades")]
    assert trades_line.split()[1:4] == ["35", "4", "4"]

    assert main(["storage", "head", "raw_trades", "-n", "2", *common]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2
    assert "'taker_side':" in printed[0]

    assert main(["storage", "expire", "--older-than", "0s", *common]) == 0
    assert "raw_trades: 3 snapshots expired" in capsys.readouterr().out

    assert main(["storage", "compact", "--day", DAY.isoformat(), *common]) == 0
    assert "raw_trades 2025-11-24: 35 rows, 4 -> 1 files" in capsys.readouterr().out
    assert not spill_files(tmp_path, "raw_trades")


def test_cli_rejects_unsupported_catalog_and_warehouse_without_leaking_passwords(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = "mysql://quote:hunter2@db/iceberg"
    assert main(["storage", "tables", "--data-dir", str(tmp_path), "--catalog-uri", uri]) == 2
    err = capsys.readouterr().err
    assert "unsupported scheme 'mysql'" in err
    assert "hunter2" not in err
    with pytest.raises(StorageConfigError, match="QW_WAREHOUSE='hdfs://x' has an unsupported"):
        CatalogConfig.resolve(tmp_path, warehouse="hdfs://x")
    assert redact("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db"
    assert "p@ss" not in repr(CatalogConfig("postgresql://u:pss@h/db", "s3://b"))


def test_embedded_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    config = CatalogConfig.resolve(tmp_path)
    assert config.catalog_uri == f"sqlite:///{tmp_path.resolve()}/catalog.db"
    assert config.warehouse == f"file://{tmp_path.resolve()}/warehouse"
    rest = CatalogConfig.resolve(tmp_path, "https://catalog.example/api", "gs://bucket/qw")
    assert (rest.catalog_uri, rest.warehouse) == ("https://catalog.example/api", "gs://bucket/qw")


def test_batch_ids_sort_by_creation_time() -> None:
    ids = [new_batch_id() for _ in range(3)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


def test_manifests_are_merged_so_commits_do_not_pile_them_up(tmp_path: Path) -> None:
    table = ensure_tables(build_catalog(CatalogConfig.resolve(tmp_path)))["raw_trades"]
    with table.transaction() as tx:
        tx.set_properties({"commit.manifest.min-count-to-merge": "5"})
    for start in range(0, 48, 4):
        commit_batches(table, [trades_batch(range(start, start + 4))])
    assert len(table.current_snapshot().manifests(table.io)) < 6  # type: ignore[union-attr]
    assert trade_ids(tmp_path) == list(range(48))
    assert len(committed_batch_ids(table)) == 12
