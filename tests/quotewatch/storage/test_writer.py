"""StorageWriter against a real SQLite catalog and file warehouse in a tmp dir."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quotewatch.config import ConfigError, Settings
from quotewatch.rows import FEATURE_COLUMNS
from quotewatch.storage.buffers import BookBuffer, RowBuffer
from quotewatch.storage.catalog import CatalogConfig, build_catalog
from quotewatch.storage.reconcile import summary, table_row_counts
from quotewatch.storage.tables import TABLES
from quotewatch.storage.writer import StorageWriter, WriterClosedError
from support.storage import T0_US, read_table, trade, wait_for

UTC = dt.UTC


def _writer(data_dir: Path, **options: float) -> StorageWriter:
    return StorageWriter(CatalogConfig.resolve(data_dir), data_dir, **options)  # type: ignore[arg-type]


def _ts(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1_000_000, UTC)


def test_rows_read_back_exactly_with_exact_decimals(tmp_path: Path) -> None:
    writer = _writer(tmp_path, flush_interval=60.0)
    bids = [(Decimal("97000.01") - i, Decimal("0.00000001") * (i + 1)) for i in range(10)]
    asks = [(Decimal("97000.02") + i, Decimal("123456789012.123456789012345678")) for i in range(3)]
    writer.submit_orderbook("BTC-USD", T0_US, T0_US + 7, bids, asks)
    trades = [trade(i, "ETH-USD") for i in range(5)]
    for t in trades:
        writer.submit_trade(t)
    writer.submit_features("BTC-USD", T0_US, T0_US + 1, {"mid": 97000.015, "imbalance": -0.25})
    writer.submit_feature_values("ETH-USD", T0_US, T0_US + 2, (3000.5, 1.5, *[None] * 4, -2.0))
    writer.submit_prediction(
        "BTC-USD",
        T0_US,
        T0_US + 1,
        horizon_seconds=10.0,
        probability=0.75,
        predicted_class=1,
        label=0,
        labelled_us=T0_US + 10_000_000,
    )
    counts = writer.close(timeout=30)

    assert {name: c.written for name, c in counts.items()} == {
        "raw_orderbook": 1,
        "raw_trades": 5,
        "features": 2,
        "predictions": 1,
    }
    [book] = read_table(tmp_path, "raw_orderbook")
    assert book["product"] == "BTC-USD"
    assert book["event_time"] == _ts(T0_US)
    assert book["received_at"] == _ts(T0_US + 7)
    assert [book[f"bid_price_{i}"] for i in range(10)] == [p for p, _ in bids]
    assert [book[f"bid_size_{i}"] for i in range(10)] == [s for _, s in bids]
    assert [book[f"ask_size_{i}"] for i in range(3)] == [s for _, s in asks]
    assert [book[f"ask_price_{i}"] for i in range(3, 10)] == [None] * 7
    rows = sorted(read_table(tmp_path, "raw_trades"), key=lambda r: r["trade_id"])  # type: ignore[arg-type, return-value]
    assert [(r["trade_id"], r["price"], r["size"], r["taker_side"]) for r in rows] == [
        (t.trade_id, t.price, t.size, t.taker_side) for t in trades
    ]
    features, fast = sorted(read_table(tmp_path, "features"), key=lambda r: str(r["product"]))
    assert features["mid"] == 97000.015
    assert features["imbalance"] == -0.25
    assert features["volatility"] is None
    assert [fast[name] for name in FEATURE_COLUMNS] == [3000.5, 1.5, *[None] * 4, -2.0]
    [prediction] = read_table(tmp_path, "predictions")
    assert prediction["label"] == 0
    assert prediction["labelled_at"] == _ts(T0_US + 10_000_000)
    assert summary(writer)["completeness"] == dict.fromkeys(TABLES, 1.0)


def test_timer_flush_fires_without_new_rows(tmp_path: Path) -> None:
    writer = _writer(tmp_path, flush_interval=0.3)
    for i in range(10):
        writer.submit_trade(trade(i))
    wait_for(lambda: writer.counts()["raw_trades"].written == 10, 10, "the timer flush")
    assert writer.read("raw_trades").column("trade_id").to_pylist() == list(range(10))
    assert writer.read("raw_trades", limit=3).num_rows == 3
    writer.close(timeout=10)


def test_size_trigger_makes_one_commit_per_flush_with_one_file_per_product(
    tmp_path: Path,
) -> None:
    writer = _writer(tmp_path, flush_rows=100, buffer_rows=1000, flush_interval=60.0)
    for i in range(100):
        writer.submit_trade(trade(i, "BTC-USD" if i % 2 else "ETH-USD"))
    wait_for(lambda: writer.counts()["raw_trades"].written == 100, 10, "the size flush")
    writer.close(timeout=10)
    table = build_catalog(CatalogConfig.resolve(tmp_path)).load_table("quotewatch.raw_trades")
    assert len(table.snapshots()) == 1
    files = table.inspect.files().to_pylist()
    assert sorted((f["partition"]["product"], f["record_count"]) for f in files) == [
        ("BTC-USD", 50),
        ("ETH-USD", 50),
    ]
    assert table_row_counts(build_catalog(CatalogConfig.resolve(tmp_path)))["raw_trades"] == 100


def test_bad_rows_raise_at_submit_with_the_expected_shape(tmp_path: Path) -> None:
    writer = _writer(tmp_path, flush_interval=60.0)
    with pytest.raises(ValueError, match="unknown feature names \\['spread'\\]"):
        writer.submit_features("BTC-USD", T0_US, T0_US, {"spread": 1.0})
    with pytest.raises(ValueError, match="expected 7 feature values in the order mid, spread"):
        writer.submit_feature_values("BTC-USD", T0_US, T0_US, (1.0, 2.0))
    with pytest.raises(ValueError, match="must be \\(price, size\\) pairs"):
        writer.submit_orderbook("BTC-USD", T0_US, T0_US, [(Decimal(1),)], [])  # type: ignore[list-item]
    writer.submit_orderbook("BTC-USD", T0_US, T0_US, [], [])
    counts = writer.close(timeout=10)
    assert counts["raw_orderbook"].written == 1
    assert counts["features"].submitted == 0
    with pytest.raises(WriterClosedError, match="closed"):
        writer.submit_trade(trade(1))
    assert writer.flush(timeout=1) is False


def test_row_that_does_not_fit_is_dropped_and_counted_not_the_batch() -> None:
    buffer = RowBuffer(TABLES["raw_trades"])
    good = (trade(1).product, T0_US, T0_US, 1, Decimal("1.5"), Decimal("2"), "buy", "ws")
    too_precise = (*good[:4], Decimal("1e-19"), *good[5:])
    buffer.add(good)
    buffer.add(too_precise)
    table, rejected = buffer.to_arrow(buffer.drain())
    assert rejected == 1
    assert table.column("price").to_pylist() == [Decimal("1.5")]


decimals = st.decimals(
    min_value=Decimal("-99999999999999999999.999999999999999999"),
    max_value=Decimal("99999999999999999999.999999999999999999"),
    places=18,
    allow_nan=False,
    allow_infinity=False,
)


@settings(max_examples=50, deadline=None)
@given(levels=st.lists(st.tuples(decimals, decimals), min_size=0, max_size=10))
def test_book_levels_convert_exactly(levels: list[tuple[Decimal, Decimal]]) -> None:
    buffer = BookBuffer(TABLES["raw_orderbook"])
    buffer.add("BTC-USD", T0_US, T0_US, levels, levels[::-1])
    table, rejected = buffer.to_arrow(buffer.drain())
    assert rejected == 0
    row = table.to_pylist()[0]
    padded = levels + [(None, None)] * (10 - len(levels))
    reverse = levels[::-1] + [(None, None)] * (10 - len(levels))
    assert [(row[f"bid_price_{i}"], row[f"bid_size_{i}"]) for i in range(10)] == padded
    assert [(row[f"ask_price_{i}"], row[f"ask_size_{i}"]) for i in range(10)] == reverse


def test_writer_takes_its_flush_policy_from_settings(tmp_path: Path) -> None:
    settings = Settings.resolve(
        environ={"QW_DATA_DIR": str(tmp_path), "QW_FLUSH_INTERVAL": "0.2", "QW_FLUSH_ROWS": "7"}
    )
    writer = StorageWriter.from_settings(settings)
    assert (writer.flush_interval, writer.flush_rows, writer.data_dir) == (0.2, 7, tmp_path)
    writer.submit_trade(trade(1))
    wait_for(lambda: writer.counts()["raw_trades"].written == 1, 10, "the timer flush")
    writer.close(timeout=10)
    with pytest.raises(ConfigError, match="QW_FLUSH_ROWS='0' is invalid"):
        Settings.resolve(environ={"QW_FLUSH_ROWS": "0"})


def test_repeated_book_levels_convert_to_the_same_columns_as_direct_conversion() -> None:
    levels = [(Decimal(97000) - i, Decimal(i + 1) / 8) for i in range(10)]
    buffer = BookBuffer(TABLES["raw_orderbook"])
    for k in range(40):  # one level changes per update, like a live book
        levels[k % 10] = (levels[k % 10][0], Decimal(k) / 16)
        buffer.add("BTC-USD", T0_US + k, T0_US + k, list(levels), list(levels[:4]))
    table, rejected = buffer.to_arrow(buffer.drain())
    assert rejected == 0
    for name in TABLES["raw_orderbook"].columns[3:]:
        direct = pa.array(table.column(name).to_pylist(), type=pa.decimal128(38, 18))
        assert table.column(name).combine_chunks().equals(direct)
    assert table.column("bid_size_0").to_pylist()[-1] == Decimal(30) / 16
    assert table.column("ask_price_5").null_count == 40


def test_submits_racing_close_are_either_written_or_refused(tmp_path: Path) -> None:
    writer = _writer(tmp_path, flush_rows=500, buffer_rows=10_000, flush_interval=60.0)
    accepted: list[int] = []

    def feed() -> None:
        for i in itertools.count():
            try:
                writer.submit_trade(trade(i))
            except WriterClosedError:
                return
            accepted.append(i)

    feeder = threading.Thread(target=feed)
    feeder.start()
    wait_for(lambda: len(accepted) >= 2_000, 10, "the feeder's first rows")
    counts = writer.close(timeout=30)
    feeder.join(10)
    assert not feeder.is_alive()
    assert counts["raw_trades"].written == counts["raw_trades"].submitted == len(accepted)
    assert sorted(writer.read("raw_trades").column("trade_id").to_pylist()) == accepted
