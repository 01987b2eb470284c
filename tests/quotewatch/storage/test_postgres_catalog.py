"""The shared catalog on a real Postgres: the scale-out path of the production layout.

A throwaway cluster (tests/support/postgres.py) backs pyiceberg's SQL catalog. One writer
round-trips through it; then two `quotewatch run` processes, each with its own product group,
read one local exchange and commit through the one catalog into one warehouse at the same
time, for 30 s, and every row each reports is in the tables exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from quotewatch.storage.catalog import CatalogConfig, build_catalog
from quotewatch.storage.tables import TABLES
from quotewatch.storage.writer import StorageWriter
from support.postgres import running_postgres
from support.storage import trade

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

QUOTEWATCH = str(Path(sys.executable).parent / "quotewatch")
GROUPS = (("BTC-USD",), ("ETH-USD", "SOL-USD"))
RUN_SECONDS = 30


@pytest.fixture
def catalog_uri() -> Iterator[str]:
    with running_postgres() as uri:
        yield uri


def _rows_by_product(config: CatalogConfig, table: str) -> Counter[str]:
    loaded = build_catalog(config).load_table(TABLES[table].identifier)
    return Counter(loaded.scan(selected_fields=("product",)).to_arrow().column(0).to_pylist())


def test_a_writer_commits_through_the_postgres_catalog(catalog_uri: str, tmp_path: Path) -> None:
    config = CatalogConfig.resolve(tmp_path, catalog_uri, (tmp_path / "wh").as_uri())
    writer = StorageWriter(config, tmp_path / "data", flush_interval=60)
    for i in range(250):
        writer.submit_trade(trade(i, product="ETH-USD"))
    counts = writer.close(30)
    assert counts["raw_trades"].written == 250
    loaded = build_catalog(config).load_table(TABLES["raw_trades"].identifier)
    ids = sorted(loaded.scan().to_arrow().column("trade_id").to_pylist())
    assert ids == list(range(250))
    # The catalog lives in Postgres, not in a SQLite file under the data dir.
    assert not (tmp_path / "data" / "catalog.db").exists()


def test_two_instances_share_one_catalog_and_warehouse_without_losing_a_row(
    catalog_uri: str, tmp_path: Path
) -> None:
    warehouse = (tmp_path / "warehouse").as_uri()
    products = ",".join(p for g in GROUPS for p in g)
    exchange = subprocess.Popen(
        [QUOTEWATCH, "simulate", "--products", products, "--seed", "11", "--rate", "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert exchange.stdout is not None
        url = next(line.split()[1] for line in exchange.stdout if line.startswith("exchange "))
        runs = []
        for k, group in enumerate(GROUPS):
            command = [QUOTEWATCH, "run", "--url", url, "--products", ",".join(group),
                       "--no-dashboard", "--port", "0", "--data-dir", str(tmp_path / f"d{k}"),
                       "--catalog-uri", catalog_uri, "--warehouse", warehouse,
                       "--flush-interval", "0.5", "--duration", str(RUN_SECONDS),
                       "--summary-json", str(tmp_path / f"s{k}.json")]  # fmt: skip
            runs.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            )
        errors = [proc.communicate(timeout=RUN_SECONDS + 90)[1] for proc in runs]
        assert [proc.returncode for proc in runs] == [0, 0], errors
    finally:
        exchange.terminate()
        exchange.wait(10)

    summaries = [json.loads((tmp_path / f"s{k}.json").read_text()) for k in range(len(GROUPS))]
    config = CatalogConfig.resolve(tmp_path, catalog_uri, warehouse)
    for table in ("raw_orderbook", "raw_trades", "features"):
        by_product = _rows_by_product(config, table)
        for group, summary in zip(GROUPS, summaries, strict=True):
            storage = summary["storage"]
            assert storage["completeness"][table] == 1.0, (table, group)
            written = storage["rows_written"][table]
            assert written > 0, (table, group)
            assert sum(by_product[p] for p in group) == written, (table, group)
        assert set(by_product) <= {p for g in GROUPS for p in g}
    # Both instances committed every half second to the same four tables: some commits lost
    # the race to the other instance and were retried, not lost; the summaries count them.
    retries = [s["storage"]["commit_retries"] for s in summaries]
    print(f"commit retries per instance: {retries}")
    assert sum(retries) > 0
    for summary in summaries:
        assert summary["products"], "the feed part of the summary"
