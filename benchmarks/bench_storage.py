"""Storage writer benchmark: sustained appends, feed-loop lag during flushes, files per hour.

    uv run --locked python benchmarks/bench_storage.py [--rows 200000]

Rows are realistic order-book states: a simulated book where each update changes one of the
top levels, submitted as `OrderBook.top(10)` would return them (lists of Decimal pairs).

1. Row path, per row: our flat columnar buffer (`submit_orderbook` + Arrow conversion) against
   the per-row dict peer (`dict` per row + `pa.Table.from_pylist`), side by side.
2. Sustained appends: rows/s from the first submit until every row is committed to the local
   warehouse (SQLite catalog, file warehouse), one process; also per CPU-second of the process
   (all its threads), which other load on a shared machine disturbs much less than wall time.
3. Feed-loop lag: an asyncio loop with a 1 ms periodic probe and a feed task submitting 5,000
   rows/s, measuring how late the probe wakes while flushes run in the writer thread, against
   the same loop with no writer activity.
4. Files per table per hour implied by the flush policy.
5. `features` submit path, per row: the tuple fast path (`submit_feature_values`) against the
   mapping path (`submit_features` with the dict the pipeline used to build per update).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from quotewatch.rows import BOOK_DEPTH, FEATURE_COLUMNS
from quotewatch.storage.buffers import BookBuffer
from quotewatch.storage.catalog import CatalogConfig
from quotewatch.storage.tables import TABLES
from quotewatch.storage.writer import DEFAULT_FLUSH_INTERVAL, DEFAULT_FLUSH_ROWS, StorageWriter

Level = tuple[Decimal, Decimal]
T0_US = 1_764_000_000_000_000


def book_states(n: int, seed: int = 7) -> list[tuple[list[Level], list[Level]]]:
    """`n` consecutive top-10 states of a simulated BTC-USD book."""
    rng = random.Random(seed)
    bids = {Decimal(f"{97000 - i * 0.01:.2f}"): Decimal(f"{rng.random():.8f}") for i in range(30)}
    asks = {
        Decimal(f"{97000.01 + i * 0.01:.2f}"): Decimal(f"{rng.random():.8f}") for i in range(30)
    }
    bid_keys, ask_keys = sorted(bids, reverse=True), sorted(asks)
    states = []
    for k in range(n):
        side, keys = (bids, bid_keys) if k % 2 else (asks, ask_keys)
        side[keys[rng.randrange(12)]] = Decimal(f"{rng.random():.8f}")
        states.append(
            (
                [(p, bids[p]) for p in bid_keys[:BOOK_DEPTH]],
                [(p, asks[p]) for p in ask_keys[:BOOK_DEPTH]],
            )
        )
    return states


def bench_row_path(states: list[tuple[list[Level], list[Level]]], rows: int) -> list[str]:
    """Per-row cost of the columnar buffer against per-row dicts + from_pylist."""
    tdef = TABLES["raw_orderbook"]
    n = len(states)

    buffer = BookBuffer(tdef)
    start = time.perf_counter()
    for i in range(rows):
        bids, asks = states[i % n]
        buffer.add("BTC-USD", T0_US + i, T0_US + i + 100, bids, asks)
    submit_ours = time.perf_counter() - start
    start = time.perf_counter()
    ours, _ = buffer.to_arrow(buffer.drain())
    convert_ours = time.perf_counter() - start

    names = tdef.columns[3:]
    dict_rows = []
    start = time.perf_counter()
    for i in range(rows):
        bids, asks = states[i % n]
        row: dict[str, object] = {
            "product": "BTC-USD",
            "event_time": T0_US + i,
            "received_at": T0_US + i + 100,
        }
        for level, (p, s) in enumerate(bids):
            row[f"bid_price_{level}"] = p
            row[f"bid_size_{level}"] = s
        for level, (p, s) in enumerate(asks):
            row[f"ask_price_{level}"] = p
            row[f"ask_size_{level}"] = s
        dict_rows.append(row)
    submit_dicts = time.perf_counter() - start
    start = time.perf_counter()
    peer = pa.Table.from_pylist(dict_rows, schema=tdef.arrow_schema)
    convert_dicts = time.perf_counter() - start
    assert peer.select(names).equals(ours.select(names))

    # The floor: Arrow's own Decimal -> decimal128 conversion of the 40 level columns.
    flat = [value for bids, asks in states for level in (*bids, *asks) for value in level]
    values = (flat * (rows // len(states) + 1))[: rows * 40]
    start = time.perf_counter()
    pa.array(values, type=tdef.arrow_schema.field("bid_price_0").type)
    floor = time.perf_counter() - start

    def us(seconds: float) -> str:
        return f"{seconds / rows * 1e6:.2f}"

    ours_total = submit_ours + convert_ours
    dicts_total = submit_dicts + convert_dicts
    return [
        f"| row path ({rows:,} rows) | submit µs/row | convert µs/row | total µs/row | ratio |",
        "|---|---:|---:|---:|---:|",
        f"| flat columnar buffer (ours) | {us(submit_ours)} | {us(convert_ours)} | "
        f"{us(ours_total)} | 1.00 |",
        f"| per-row dict + from_pylist (peer) | {us(submit_dicts)} | {us(convert_dicts)} | "
        f"{us(dicts_total)} | {dicts_total / ours_total:.2f} |",
        f"| floor: pa.array of the 40 Decimals alone | - | {us(floor)} | {us(floor)} | "
        f"{floor / ours_total:.2f} |",
    ]


def bench_sustained(states: list[tuple[list[Level], list[Level]]], rows: int) -> list[str]:
    """Rows/s from first submit to last commit, default flush settings."""
    n = len(states)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        writer = StorageWriter(CatalogConfig.resolve(data_dir), data_dir)
        writer.flush()  # tables created before the clock starts
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(rows):
            bids, asks = states[i % n]
            writer.submit_orderbook("BTC-USD", T0_US + i, T0_US + i + 100, bids, asks)
        submitted = time.perf_counter() - start
        counts = writer.close(timeout=600)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        written = counts["raw_orderbook"].written
        assert written == rows, counts
        table_files = list(
            (data_dir / "warehouse" / "quotewatch" / "raw_orderbook").rglob("*.parquet")
        )
    return [
        "| sustained appends | rows | submit s | submitted->committed s | rows/s | CPU s "
        "| rows/CPU-s | files |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| raw_orderbook, defaults | {rows:,} | {submitted:.2f} | {elapsed:.2f} | "
        f"{rows / elapsed:,.0f} | {cpu:.2f} | {rows / cpu:,.0f} | {len(table_files)} |",
    ]


async def _probe_loop(
    seconds: float, feed: Callable[[int], None] | None, rate: int
) -> list[tuple[float, float]]:
    """Run a 1 ms probe (and a feed submitting `rate` rows/s) for `seconds`.

    Returns (wake-up time, lateness) per probe.
    """
    samples: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def probe() -> None:
        while loop.time() < end:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            samples.append((now, now - before - 0.001))

    async def feeder() -> None:
        i = 0
        while loop.time() < end:
            assert feed is not None
            for _ in range(rate // 100):
                feed(i)
                i += 1
            await asyncio.sleep(0.01)

    tasks = [probe()] + ([feeder()] if feed else [])
    await asyncio.gather(*tasks)
    return samples


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(samples, n=100)
    return q[49] * 1e3, q[98] * 1e3, max(samples) * 1e3


def _row(label: str, samples: list[float], note: str) -> str:
    p50, p99, worst = _percentiles(samples)
    interval = sys.getswitchinterval() * 1e3
    return (
        f"| {label} | {interval:g} ms | {len(samples):,} | {p50:.2f} | {p99:.2f} | "
        f"{worst:.2f} | {note} |"
    )


def _lag_with_writer(
    states: list[tuple[list[Level], list[Level]]], seconds: float
) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
    """Probe samples, flush windows and rows written for one run with a flushing writer."""
    n = len(states)
    windows: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        writer = StorageWriter(CatalogConfig.resolve(data_dir), data_dir, flush_interval=1.0)
        writer.flush()
        flush_table = writer._flush_table

        def timed_flush(name: str, **kwargs: bool) -> None:
            start = time.perf_counter()
            flush_table(name, **kwargs)
            windows.append((start, time.perf_counter()))

        writer._flush_table = timed_flush  # type: ignore[method-assign]

        def feed(i: int) -> None:
            bids, asks = states[i % n]
            writer.submit_orderbook("BTC-USD", T0_US + i, T0_US + i, bids, asks)

        samples = asyncio.run(_probe_loop(seconds, feed, 5_000))
        rows = writer.close(timeout=60)["raw_orderbook"].written
    return samples, windows, rows


def bench_lag(states: list[tuple[list[Level], list[Level]]], seconds: float) -> list[str]:
    """Probe lateness with no writer, and while a writer flushes (every 1 s, 5,000 rows/s)."""
    lines = [
        "| feed-loop lag (1 ms probe) | GIL switch | probes | p50 ms | p99 ms | max ms | flushes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    baseline = asyncio.run(_probe_loop(seconds, None, 0))
    lines.append(_row("no writer (peer)", [late for _, late in baseline], "-"))
    from quotewatch.app.process_tuning import SWITCH_INTERVAL

    default_interval = sys.getswitchinterval()
    # Python's default, and the interval `quotewatch run`/`demo` set while they run.
    for interval in (default_interval, SWITCH_INTERVAL):
        sys.setswitchinterval(interval)
        samples, windows, rows = _lag_with_writer(states, seconds)
        flushing = [w for w in windows if w[1] - w[0] > 0.005]  # tables with rows to write
        during = [
            late
            for woke, late in samples
            if any(start <= woke <= end + 0.001 for start, end in flushing)
        ]
        lines.append(_row("writer, during flushes", during, f"{len(flushing)} ({rows:,} rows)"))
        lines.append(_row("writer, whole run", [late for _, late in samples], ""))
    sys.setswitchinterval(default_interval)
    return lines


def files_per_hour() -> list[str]:
    """Files per table per hour implied by the flush policy."""
    lines = [
        "| flush policy (defaults) | rows/s into a table | products | commits/h | files/h |",
        "|---|---:|---:|---:|---:|",
    ]
    for rate, products in ((100, 1), (400, 1), (400, 3), (2_000, 3)):
        per_hour_time = 3600 / DEFAULT_FLUSH_INTERVAL
        per_hour_size = rate * 3600 / DEFAULT_FLUSH_ROWS
        commits = max(per_hour_time, per_hour_size)
        lines.append(
            f"| {DEFAULT_FLUSH_INTERVAL:.0f} s or {DEFAULT_FLUSH_ROWS:,} rows | {rate:,} | "
            f"{products} | {commits:,.0f} | {commits * products:,.0f} |"
        )
    return lines


def bench_submit_features(rows: int) -> list[str]:
    """Per-row cost of the two `features` submit paths, side by side, best of 7 runs."""
    features = (12.5, 0.25, -0.125, 3.0, 0.5, -2.0)
    named = dict(zip(FEATURE_COLUMNS[1:], features, strict=True))
    mid = 97000.005
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        writer = StorageWriter(
            CatalogConfig.resolve(data_dir),
            data_dir,
            flush_rows=rows,
            buffer_rows=rows,
            flush_interval=3600.0,
        )
        submit, fast = writer.submit_features, writer.submit_feature_values

        def mapping(i: int) -> None:
            submit("BTC-USD", i, i, {"mid": mid, **named})

        def values(i: int) -> None:
            fast("BTC-USD", i, i, (mid, *features))

        best = {mapping: float("inf"), values: float("inf")}
        for _ in range(7):
            for path, fastest in best.items():
                start = time.perf_counter()
                for i in range(rows):
                    path(i)
                best[path] = min(fastest, time.perf_counter() - start)
                writer._features.drain()
        writer.close(timeout=10)
    slow, quick = best[mapping] / rows * 1e9, best[values] / rows * 1e9
    return [
        f"| features submit ({rows:,} rows, best of 7) | ns/row | ratio |",
        "|---|---:|---:|",
        f"| submit_feature_values((mid, *features)) (ours) | {quick:,.0f} | 1.00 |",
        f"| submit_features({{'mid': mid, **named}}) (peer) | {slow:,.0f} | {slow / quick:.2f} |",
    ]


def main() -> None:
    """Run every benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000, help="rows for the sustained run")
    parser.add_argument("--lag-seconds", type=float, default=5.0, help="probe duration")
    args = parser.parse_args()
    states = book_states(20_000)
    for section in (
        bench_row_path(states, 50_000),
        bench_sustained(states, args.rows),
        bench_lag(states, args.lag_seconds),
        files_per_hour(),
        bench_submit_features(5_000),
    ):
        print("\n".join(section))
        print()


if __name__ == "__main__":
    main()
