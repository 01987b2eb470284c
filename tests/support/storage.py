"""Helpers for the storage tests: row makers, table reads, outages and a writer subprocess.

Run as a script (`python tests/support/storage.py ...`) it is a writer process: it submits
`raw_trades` rows with consecutive trade ids (or, with `--table raw_orderbook`, book rows with
`event_time = T0_US + i`), prints progress lines, and on SIGINT closes the writer (final flush)
and prints its counts as JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from types import FrameType

from quotewatch.events import Trade
from quotewatch.storage.buffers import Level, RowBuffer
from quotewatch.storage.catalog import CatalogConfig, build_catalog
from quotewatch.storage.commit import Batch, new_batch_id
from quotewatch.storage.tables import TABLES

SCRIPT = Path(__file__)
T0_US = 1_764_000_000_000_000  # 2025-11-24T16:00:00Z


def trade(i: int, product: str = "BTC-USD") -> Trade:
    """A trade with id `i`, an exact 8-decimal price and size, one ms after the last."""
    return Trade(
        product=product,
        trade_id=i,
        price=Decimal("97000.01") + Decimal(i) / Decimal(10**8),
        size=Decimal(i % 1000 + 1) / Decimal(10**8),
        taker_side="buy" if i % 2 else "sell",
        time_us=T0_US + i * 1000,
        received_us=T0_US + i * 1000 + 250,
    )


def book_row(i: int) -> tuple[list[Level], list[Level]]:
    """Top-10 bids and asks for book row `i`: 1,000 distinct states, like a live book's churn."""
    k = i % 1000
    bids = [(Decimal(97000 - level), Decimal(k + level + 1) / 10**8) for level in range(10)]
    asks = [(Decimal(97001 + level), Decimal(k * 3 + level + 1) / 10**8) for level in range(10)]
    return bids, asks


def trades_batch(ids: range) -> Batch:
    """A raw_trades batch (new id) holding `trade(i)` for each i in `ids`."""
    buffer = RowBuffer(TABLES["raw_trades"])
    for i in ids:
        t = trade(i)
        buffer.add(
            (
                t.product,
                t.time_us,
                t.received_us,
                t.trade_id,
                t.price,
                t.size,
                t.taker_side,
                t.source,
            )
        )
    data, _ = buffer.to_arrow(buffer.drain())
    return Batch("raw_trades", new_batch_id(), data)


def read_table(data_dir: Path, name: str) -> list[dict[str, object]]:
    """Every row of a table, through a fresh catalog (what another process would see)."""
    catalog = build_catalog(CatalogConfig.resolve(data_dir))
    identifier = TABLES[name].identifier
    if not catalog.table_exists(identifier):
        return []
    return list(catalog.load_table(identifier).scan().to_arrow().to_pylist())


def trade_ids(data_dir: Path) -> list[int]:
    """The trade ids in raw_trades, sorted (duplicates kept)."""
    return sorted(int(row["trade_id"]) for row in read_table(data_dir, "raw_trades"))  # type: ignore[call-overload]


@contextmanager
def warehouse_outage(data_dir: Path) -> Iterator[None]:
    """Make the file warehouse unusable (a plain file where its directory was), then restore."""
    warehouse = data_dir / "warehouse"
    away = data_dir / "warehouse.away"
    warehouse.rename(away)
    warehouse.write_text("storage is down")
    try:
        yield
    finally:
        warehouse.unlink()
        away.rename(warehouse)


def wait_for(predicate: object, timeout: float, what: str) -> None:
    """Poll `predicate()` every 50 ms until true; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _child(argv: list[str]) -> int:
    from quotewatch.storage.writer import StorageWriter

    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--pause", type=float, default=0.02)
    parser.add_argument("--flush-rows", type=int, default=5_000)
    parser.add_argument("--flush-interval", type=float, default=10.0)
    parser.add_argument("--buffer-rows", type=int, default=100_000)
    parser.add_argument("--then", choices=("close", "wait"), default="close")
    parser.add_argument("--table", choices=("raw_trades", "raw_orderbook"), default="raw_trades")
    parser.add_argument("--close-timeout", type=float, default=20.0)
    args = parser.parse_args(argv)
    writer = StorageWriter(
        CatalogConfig.resolve(args.data_dir),
        args.data_dir,
        flush_rows=args.flush_rows,
        flush_interval=args.flush_interval,
        buffer_rows=args.buffer_rows,
    )

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    writer.flush()  # the writer thread is up and the tables are open
    try:
        states = [book_row(i) for i in range(1000)] if args.table == "raw_orderbook" else []
        for i in range(args.start, args.start + args.rows):
            if states:
                bids, asks = states[i % 1000]
                writer.submit_orderbook("BTC-USD", T0_US + i, T0_US + i, bids, asks)
            else:
                writer.submit_trade(trade(i))
            if (i - args.start + 1) % args.burst == 0:
                print(f"submitted {i - args.start + 1}", flush=True)
                time.sleep(args.pause)
        print("done", flush=True)
        while args.then == "wait":
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    counts = writer.close(timeout=args.close_timeout)
    print(json.dumps({name: asdict(c) for name, c in counts.items()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
