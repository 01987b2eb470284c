"""Replay at start: the raw rows of logged frames that no commit or spill file covers.

Each table's covered position is the highest `quotewatch.frame-position` in its snapshots or
its spill files: every row of every frame up to it is in the table or on its way there. The
frames an earlier run logged beyond it were received but their rows died with that run. They
are replayed, segment by segment, through a `FeedSession` restored from the segment's
checkpoint, and `RawRows` submits the `raw_orderbook` and `raw_trades` rows of the frames past
each table's position, exactly as the pipeline made them. The writer's commits then record
those frames' positions like live ones, so a crash during recovery replays nothing twice.

Derived tables are not rebuilt: `features` and `predictions` depend on model and window state
the log does not keep, and rebuilt rows would differ from the ones lost. Their loss is counted
instead, in frames replayed past each one's position (and, exactly, the `features` rows those
frames would have produced), in the summary and in `wal_derived_frames_lost_total`. Segments go
once the raw tables hold their frames, so where a derived table's commits lag further behind,
its count covers the frames the log still holds: a lower bound.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qw_metrics import counted

from quotewatch.book import OrderBook
from quotewatch.events import BookSnapshot, BookUpdate, Event, Trade
from quotewatch.ingest.session import FeedSession
from quotewatch.metrics import ROW_ACCOUNTS, WAL_DERIVED_FRAMES_LOST, WAL_REPLAYED_FRAMES
from quotewatch.rows import BOOK_DEPTH
from quotewatch.wal.segments import BlockKind, EntryKind, read_segment, segment_paths

if TYPE_CHECKING:
    from quotewatch.storage.writer import StorageWriter
    from quotewatch.wal.frame_log import FrameLog

log = logging.getLogger(__name__)

RAW_TABLES = ("raw_orderbook", "raw_trades")
DERIVED_TABLES = ("features", "predictions")
RECOVERY_FLUSH_TIMEOUT = 60.0


@dataclass(frozen=True)
class Recovery:
    """What replaying the log at start did."""

    frames: int = 0  # frames replayed past the lowest raw table's position
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RAW_TABLES, 0))
    derived_frames_lost: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(DERIVED_TABLES, 0)
    )
    features_rows_lost: int = 0
    torn_segments: int = 0  # segments that ended in a torn block (a crash mid-write)
    error: str | None = None  # why recovery did not run (the segments are kept)

    def summary(self) -> dict[str, object]:
        """The recovery section of the run summary."""
        return {
            "frames_replayed": self.frames,
            "rows_restored": self.rows,
            "derived_frames_lost": self.derived_frames_lost,
            "features_rows_lost": self.features_rows_lost,
            "torn_segments": self.torn_segments,
            "error": self.error,
        }


@ROW_ACCOUNTS.source
class RawRows:
    """A `FeedSession` consumer that submits the raw rows of frames past each table's
    position, and counts what the derived tables lost; its rows count as expected ones."""

    def __init__(
        self, sink: StorageWriter, covered: Mapping[str, int], products: tuple[str, ...]
    ) -> None:
        self.sink = sink
        self.covered = covered
        self.products = frozenset(products)
        self.position = -1  # of the frame being replayed
        self.rows = dict.fromkeys(RAW_TABLES, 0)
        self.features_rows_lost = 0

    def rows_produced(self) -> Mapping[str, int]:
        """Rows submitted per table (read at collect time as rows expected)."""
        return self.rows

    def __call__(self, event: Event, book: OrderBook | None) -> None:
        if isinstance(event, Trade):
            if event.product in self.products and self.position > self.covered["raw_trades"]:
                self.sink.submit_trade(event)
                self.rows["raw_trades"] += 1
            return
        if not isinstance(event, BookUpdate | BookSnapshot) or book is None:
            return
        if event.product not in self.products:
            return
        bids, asks = book.top(BOOK_DEPTH)
        if self.position > self.covered["raw_orderbook"]:
            time_us = event.time_us
            if isinstance(event, BookSnapshot):
                time_us = event.time_us or event.received_us
            assert time_us is not None
            self.sink.submit_orderbook(event.product, time_us, event.received_us, bids, asks)
            self.rows["raw_orderbook"] += 1
        if bids and asks and self.position > self.covered["features"]:
            self.features_rows_lost += 1


@counted(WAL_REPLAYED_FRAMES, amount=lambda r: r.frames)
@counted(WAL_DERIVED_FRAMES_LOST, table="features",
         amount=lambda r: r.derived_frames_lost["features"])  # fmt: skip
@counted(WAL_DERIVED_FRAMES_LOST, table="predictions",
         amount=lambda r: r.derived_frames_lost["predictions"])  # fmt: skip
def recover(frame_log: FrameLog, writer: StorageWriter, *, max_id_jump: int) -> Recovery:
    """Replay the frames earlier runs logged past what storage covers, into `writer`; then
    let the log delete their segments once the rows are durable. Blocking I/O: call before
    the feed starts, while every segment is an earlier run's."""
    try:
        covered = writer.frame_positions()
    except Exception as exc:  # the catalog is down: replaying now could store rows twice
        error = f"{type(exc).__name__}: {next(iter(str(exc).splitlines()), '')}"
        log.error("frame log: cannot read committed positions, replay postponed: %s", error)
        return Recovery(error=error)
    replay_from = min(covered[t] for t in RAW_TABLES) + 1
    frames = 0
    rows = dict.fromkeys(RAW_TABLES, 0)
    lost = dict.fromkeys(DERIVED_TABLES, 0)
    features_lost = 0
    torn = 0
    for path in segment_paths(frame_log.directory):
        segment = read_segment(path)
        torn += segment.torn
        if segment.end <= replay_from or not segment.blocks:
            continue
        checkpoint = segment.blocks[0]
        if checkpoint.kind is not BlockKind.CHECKPOINT:
            log.error("frame log: %s does not open with a checkpoint; skipped", path)
            continue
        feed, products = FeedSession.checkpoint_feed(checkpoint.checkpoint)
        consumer = RawRows(writer, covered, products)
        session = FeedSession(
            feed, products=products, consumers=[consumer], max_id_jump=max_id_jump,
            drop_unsubscribed=True,
        )  # fmt: skip
        session.restore(checkpoint.checkpoint)
        for entry in segment.entries():
            with frame_log.lock:
                frame_log.position = entry.position
                if entry.kind is EntryKind.CONNECT:
                    session.connection_started()
                    continue
                consumer.position = entry.position
                payload: str | bytes = entry.payload
                if entry.kind is EntryKind.TEXT:
                    payload = entry.payload.decode()
                session.handle_frame(payload, entry.received_us)
            frames += entry.position >= replay_from
            for table in DERIVED_TABLES:
                lost[table] += entry.position > covered[table]
        for table in RAW_TABLES:
            rows[table] += consumer.rows[table]
        features_lost += consumer.features_rows_lost
    frame_log.advance_to(max(frame_log.first - 1, *covered.values()))
    if frames:
        writer.flush(RECOVERY_FLUSH_TIMEOUT)
        log.warning(
            "frame log: replayed %d frames an earlier run received but did not store: "
            "restored %s; derived rows not rebuilt for %s frames",
            frames, rows, lost,
        )  # fmt: skip
    log.info(
        "frame log %s: %d frames replayed; this run's frames from position %d",
        frame_log.directory, frames, frame_log.position + 1,
    )  # fmt: skip
    if len(writer):
        # Not committed or spilled yet: a crash now must still find those frames.
        log.warning("frame log: the restored rows are not stored yet; keeping the segments")
    else:
        frame_log.recovered()
    return Recovery(frames, rows, lost, features_lost, torn)
