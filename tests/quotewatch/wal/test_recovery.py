"""Replay at start, in one process against a real SQLite catalog: the raw rows a "crash" left
only in the frame log are restored exactly once, spilled rows are not replayed twice, and the
derived tables' loss is counted."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import FeedSession
from quotewatch.pipeline.pipeline import Pipeline
from quotewatch.state import StateStore
from quotewatch.storage.catalog import CatalogConfig
from quotewatch.storage.writer import StorageWriter
from quotewatch.wal import FrameLog
from quotewatch.wal.recovery import recover
from quotewatch.wal.segments import segment_paths
from support.exchange_frames import exchange_frames
from support.storage import read_table, wait_for, warehouse_outage

PRODUCTS = ("BTC-USD", "ETH-USD")
TABLES = ("raw_orderbook", "raw_trades", "features", "predictions")
FRAMES = exchange_frames(PRODUCTS, seconds=20, rate=2.0)


class Stack:
    """What `run` builds around the feed: a logged session, the pipeline and the writer."""

    def __init__(self, data_dir: Path, *, log: bool = True) -> None:
        self.frame_log = FrameLog(data_dir / "wal", fsync_interval=0.01) if log else None
        self.writer = StorageWriter(
            CatalogConfig.resolve(data_dir), data_dir, flush_rows=10**6, buffer_rows=10**6,
            flush_interval=3600, frames=self.frame_log,
        )  # fmt: skip
        self.session = FeedSession(Feed.EXCHANGE, products=PRODUCTS, drop_unsubscribed=True)
        if self.frame_log is not None:
            self.session.log_frames(self.frame_log)
        self.pipeline = Pipeline(PRODUCTS, StateStore(), self.writer)
        self.session.consumers.append(self.pipeline.process)

    @classmethod
    def connected(cls, data_dir: Path) -> Stack:
        """A stack whose connection has started (the log's first entry)."""
        stack = cls(data_dir)
        stack.session.connection_started()
        return stack

    def feed(self, frames: Sequence[tuple[str, int]]) -> None:
        for text, received_us in frames:
            self.session.handle_frame(text, received_us)

    def crash(self) -> None:
        """What survives a kill -9 once the log thread has written: the log, not the rows
        held in memory (the writer is abandoned, its thread never flushes again)."""
        assert self.frame_log is not None
        time.sleep(0.05)
        self.frame_log.close()


def _crashed_run(data_dir: Path) -> None:
    """Every frame through a logged run that then "crashes"."""
    run = Stack.connected(data_dir)
    run.feed(FRAMES)
    run.crash()


def _rows(data_dir: Path, table: str) -> list[tuple[object, ...]]:
    return sorted(tuple(row.values()) for row in read_table(data_dir, table))


def _assert_tables_as_expected(data_dir: Path, tmp_path: Path, *tables: str) -> None:
    expected = _expected(tmp_path)
    for table in tables or ("raw_orderbook", "raw_trades"):
        assert _rows(data_dir, table) == _rows(expected, table), table


def _expected(tmp_path: Path) -> Path:
    """The tables after the same frames in one uninterrupted run, without a log."""
    data_dir = tmp_path / "expected"
    stack = Stack(data_dir, log=False)
    stack.session.connection_started()
    stack.feed(FRAMES)
    stack.pipeline.close()
    stack.writer.close()
    return data_dir


def test_replay_restores_the_raw_rows_a_crash_lost_exactly_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "run"
    half = len(FRAMES) // 2
    first = Stack.connected(data_dir)
    first.feed(FRAMES[:half])
    assert first.writer.flush(30)  # half the rows committed, with the position they cover
    first.feed(FRAMES[half:])
    first.crash()
    committed = {t: len(read_table(data_dir, t)) for t in ("raw_orderbook", "features")}

    second = Stack(data_dir)
    recovery = recover(second.frame_log, second.writer, max_id_jump=1_000_000)
    second.writer.close()
    second.frame_log.close()
    expected = _expected(tmp_path)

    for table in ("raw_orderbook", "raw_trades"):
        assert _rows(data_dir, table) == _rows(expected, table), table
    assert (
        recovery.rows["raw_orderbook"]
        == len(_rows(expected, "raw_orderbook")) - committed["raw_orderbook"]
    )
    # Derived rows are not rebuilt: the features lost are exactly those the run would have had.
    lost_features = len(_rows(expected, "features")) - committed["features"]
    assert recovery.features_rows_lost == lost_features > 0
    assert len(read_table(data_dir, "features")) == committed["features"]
    assert 0 < recovery.derived_frames_lost["features"] <= recovery.frames
    # Position 0 is the connection start, then one per frame: the flush covered 1..half.
    assert recovery.frames == len(FRAMES) - half
    # Once the restored rows were committed, the earlier run's segments went.
    assert segment_paths(data_dir / "wal") == []


def test_a_second_recovery_after_the_first_replays_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "run"
    _crashed_run(data_dir)
    second = Stack(data_dir)
    assert recover(second.frame_log, second.writer, max_id_jump=1_000_000).frames > 0
    second.crash()  # after its restored rows were committed, before anything else
    third = Stack(data_dir)
    assert recover(third.frame_log, third.writer, max_id_jump=1_000_000).frames == 0
    third.writer.close()
    _assert_tables_as_expected(data_dir, tmp_path)


def test_spilled_rows_are_covered_and_not_replayed_twice(tmp_path: Path) -> None:
    data_dir = tmp_path / "run"
    first = Stack.connected(data_dir)
    first.feed(FRAMES)
    first.pipeline.close()
    wait_for(lambda: first.writer.storage_open, 30, "the tables to be created")
    with warehouse_outage(data_dir):
        counts = first.writer.close(timeout=3)  # storage down: every row goes to spill files
    assert counts["raw_orderbook"].spilled == counts["raw_orderbook"].submitted > 0
    first.crash()

    second = Stack(data_dir)
    recovery = recover(second.frame_log, second.writer, max_id_jump=1_000_000)
    assert recovery.frames == 0  # the spill files cover every frame
    second.writer.close()  # its first pass committed the spill files
    _assert_tables_as_expected(data_dir, tmp_path, *TABLES)


def test_a_catalog_down_at_start_postpones_replay_and_keeps_the_log(tmp_path: Path) -> None:
    data_dir = tmp_path / "run"
    _crashed_run(data_dir)
    segments = segment_paths(data_dir / "wal")
    assert segments

    catalog = data_dir / "catalog.db"
    catalog.rename(data_dir / "catalog.away")
    catalog.mkdir()  # sqlite cannot open a directory: the catalog is down
    second = Stack(data_dir)
    postponed = recover(second.frame_log, second.writer, max_id_jump=1_000_000)
    assert postponed.error is not None
    assert postponed.frames == 0
    second.frame_log.close()
    assert segment_paths(data_dir / "wal") == segments  # kept for a later start
    catalog.rmdir()
    (data_dir / "catalog.away").rename(catalog)

    third = Stack(data_dir)
    assert recover(third.frame_log, third.writer, max_id_jump=1_000_000).frames == len(FRAMES)
    third.writer.close()
    _assert_tables_as_expected(data_dir, tmp_path)


def test_reading_positions_while_the_writer_creates_a_new_catalog(tmp_path: Path) -> None:
    # Both threads used to create a fresh SQLite catalog's schema at once: "table
    # iceberg_tables already exists" turned the frame log off for the demo's first run.
    for attempt in range(5):
        data_dir = tmp_path / str(attempt)
        writer = StorageWriter(CatalogConfig.resolve(data_dir), data_dir)
        try:
            assert writer.frame_positions() == dict.fromkeys(
                ("raw_orderbook", "raw_trades", "features", "predictions"), -1
            )
        finally:
            writer.close()
