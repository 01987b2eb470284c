"""The background Iceberg writer: non-blocking submits, one commit per table per flush.

The feed loop calls the `submit_*` methods; they append to an in-memory buffer under a short
lock and never touch the catalog, the warehouse or the disk. A daemon thread flushes a table
when its buffer reaches `flush_rows` or every `flush_interval` seconds (a timer, so it fires
when the feed stalls). A flush converts the rows to Arrow and appends them in ONE commit.

A flush that fails (catalog or storage down, conflicts beyond pyiceberg's own retries) keeps
its batch in memory and is retried with exponential backoff; once a table holds more than
`buffer_rows` rows in memory, the failed batches are spilled to Parquet under
`<data_dir>/spill/<table>/`. Spill files are committed exactly once by a later successful
flush, at start-up, or by `quotewatch storage recover` (see `spill.py`). `close(timeout)` does
a final flush and spills whatever it cannot commit before the deadline, so nothing is lost.

Ownership: rows drained from a buffer, being converted, or pending as batches belong to the
flusher thread alone, until `close()` runs out of time and takes them over. Every hand-off
happens under `_lock`: the takeover sets `_abandoned` and moves what the flusher holds to the
closing thread, and the flusher, which re-checks `_still_owner()` under the same lock before
it records any outcome, then never touches them again. A commit the abandoned flusher has in
flight may still land; close() spills that batch too and recovery deletes its file without
appending it (batch ids make commits exactly once), so rows are neither lost nor duplicated.

With a frame log (`frames`, see `quotewatch.wal`), a buffer is drained holding the log's lock,
which the feed loop holds for each whole frame: the drained rows are those of every frame up
to the log's `position` then, and the batch carries that position into its commit or spill
file. Once every raw table's rows are durable up to a position, the log may delete the frames
up to it (`release`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
from qw_metrics import counted, recorded, timed, track_buffer

from quotewatch.metrics import (
    FLUSH_DURATION,
    FLUSH_ERRORS,
    FLUSH_ROWS,
    FLUSHES,
    ROW_ACCOUNTS,
    ROWS_WRITTEN,
    SPILLED_ROWS,
    STORAGE_WRITER_BUFFER,
    starts_at_zero,
)
from quotewatch.rows import FEATURE_COLUMNS, TABLE_NAMES, RowSink
from quotewatch.storage.buffers import (
    BookBuffer,
    Buffer,
    Level,
    RowBuffer,
    WriterClosedError,
    warm_up,
)
from quotewatch.storage.catalog import CatalogConfig, build_catalog
from quotewatch.storage.commit import (
    Batch,
    commit_batches,
    committed_position,
    covered_position,
    new_batch_id,
)
from quotewatch.storage.spill import recover_table, spill_files, spilled_position, write_spill
from quotewatch.storage.tables import TABLES, ensure_tables, table_def

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from quotewatch.config import Settings
    from quotewatch.events import Trade

log = logging.getLogger(__name__)

DEFAULT_FLUSH_ROWS = 5_000
DEFAULT_FLUSH_INTERVAL = 10.0
DEFAULT_BUFFER_ROWS = 100_000
RETRY_MIN, RETRY_MAX = 0.5, 30.0
CLOSE_SPILL_RESERVE = 0.5  # seconds of close()'s timeout kept for spilling what is left
_FEATURES = frozenset(FEATURE_COLUMNS)
_N_FEATURES = len(FEATURE_COLUMNS)
# The tables a frame log protects: its frames may go once these hold their rows.
RAW_TABLES = ("raw_orderbook", "raw_trades")

__all__ = [
    "DEFAULT_BUFFER_ROWS",
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_FLUSH_ROWS",
    "FlushResult",
    "StorageWriter",
    "TableCounts",
    "WriterClosedError",
]


@dataclass(frozen=True)
class FlushResult:
    """What one commit (or spill) of a table did: `rows` committed/spilled, or the error."""

    table: str
    rows: int
    error: str | None = None

    def ok(self) -> Mapping[str, str] | None:
        """Labels when it succeeded, else None (for `counted(labels_from_result=...)`)."""
        return {"table": self.table} if self.error is None else None

    def failed(self) -> Mapping[str, str] | None:
        """Labels when it failed, else None."""
        return {"table": self.table} if self.error is not None else None


@dataclass
class TableCounts:
    """Per-table row accounting for this writer's run."""

    submitted: int = 0
    written: int = 0
    spilled: int = 0
    rejected: int = 0
    recovered: int = 0  # rows from spill files of earlier runs


class FramePositions(Protocol):
    """The frame log as the writer sees it (`quotewatch.wal.FrameLog`)."""

    lock: threading.Lock  # held by the feed loop for each whole frame
    position: int  # the newest frame's; read holding `lock`
    live: bool  # replay at start is over: every frame up to `position` went through here

    def release(self, position: int) -> None:
        """Every raw row of every frame up to `position` is durable."""


def _rows(result: FlushResult) -> float:
    return result.rows


def _table_labels(tables: Sequence[str]) -> list[dict[str, str]]:
    return [{"table": name} for name in tables]


@ROW_ACCOUNTS.holder
@track_buffer(STORAGE_WRITER_BUFFER, capacity="capacity")
class StorageWriter(RowSink):
    """Thread-safe, non-blocking writer of the four quotewatch tables (see `tables.py`)."""

    def __init__(
        self,
        config: CatalogConfig,
        data_dir: Path,
        *,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        buffer_rows: int = DEFAULT_BUFFER_ROWS,
        clock: Callable[[], float] = time.monotonic,
        frames: FramePositions | None = None,
    ) -> None:
        if flush_rows < 1 or buffer_rows < flush_rows or not flush_interval > 0:
            raise ValueError(
                f"need flush_rows >= 1, buffer_rows >= flush_rows and flush_interval > 0, got "
                f"flush_rows={flush_rows}, buffer_rows={buffer_rows}, "
                f"flush_interval={flush_interval}"
            )
        self.config = config
        self.data_dir = data_dir
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval
        self.buffer_rows = buffer_rows
        self.capacity = buffer_rows * len(TABLE_NAMES)
        self._clock = clock
        self._frames = frames
        self._durable = dict.fromkeys(TABLE_NAMES, -1)  # frame position durable per table
        self._book = BookBuffer(TABLES["raw_orderbook"])
        self._trades = RowBuffer(TABLES["raw_trades"])
        self._features = RowBuffer(TABLES["features"])
        self._predictions = RowBuffer(TABLES["predictions"])
        self._buffers: dict[str, Buffer] = {
            "raw_orderbook": self._book,
            "raw_trades": self._trades,
            "features": self._features,
            "predictions": self._predictions,
        }
        self._counts = {name: TableCounts() for name in TABLE_NAMES}
        self._lock = threading.Lock()  # guards every hand-off of rows (see the module doc)
        self._pending: dict[str, list[Batch]] = {name: [] for name in TABLE_NAMES}
        # table -> (rows drained, count, frame position)
        self._converting: dict[str, tuple[Any, int, int | None]] = {}
        self._spill_waiting = dict.fromkeys(TABLE_NAMES, 0)  # rows this run spilled, unrecovered
        self._abandoned = False  # close() took the flusher's rows over
        self._retry_at = dict.fromkeys(TABLE_NAMES, 0.0)
        self._retry_wait = dict.fromkeys(TABLE_NAMES, RETRY_MIN)
        self._spills_waiting = dict.fromkeys(TABLE_NAMES, True)  # check leftovers at start
        self._spilled_ids: set[str] = set()
        self._catalog: Catalog | None = None
        self._catalog_lock = threading.Lock()
        self._tables: dict[str, Table] = {}
        self._wake = threading.Event()
        self._flush_now = threading.Event()
        self._flushed = threading.Condition()
        self._flush_generation = 0
        self._closing = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="storage-writer", daemon=True)
        self._writes()
        self._wake.set()  # the first pass recovers spill files left by an earlier run
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> StorageWriter:
        """A writer for the catalog, warehouse, data dir and flush policy in `settings`."""
        options = {
            "flush_interval": settings.flush_interval,
            "flush_rows": settings.flush_rows,
            "buffer_rows": max(DEFAULT_BUFFER_ROWS, settings.flush_rows),
            **options,
        }
        return cls(CatalogConfig.from_settings(settings), settings.data_dir, **options)

    # --- submits: called from the feed loop, never block on I/O -------------------------------

    def submit_orderbook(
        self,
        product: str,
        time_us: int,
        received_us: int,
        bids: Sequence[Level],
        asks: Sequence[Level],
    ) -> None:
        """Queue one `raw_orderbook` row: the top levels (best first) after an update."""
        if self._book.add(product, time_us, received_us, bids, asks) >= self.flush_rows:
            self._wake.set()

    def submit_trade(self, trade: Trade) -> None:
        """Queue one `raw_trades` row from a parsed trade event."""
        row = (
            trade.product,
            trade.time_us,
            trade.received_us,
            trade.trade_id,
            trade.price,
            trade.size,
            trade.taker_side,
            trade.source,
        )
        if self._trades.add(row) >= self.flush_rows:
            self._wake.set()

    def submit_features(
        self, product: str, time_us: int, received_us: int, features: Mapping[str, float | None]
    ) -> None:
        """Queue one `features` row; `features` maps names in `FEATURE_COLUMNS` to floats."""
        if not _FEATURES.issuperset(features):
            raise ValueError(
                f"unknown feature names {sorted(features.keys() - _FEATURES)}: the features "
                f"table has {', '.join(FEATURE_COLUMNS)}"
            )
        row = (product, time_us, received_us, *map(features.get, FEATURE_COLUMNS))
        if self._features.add(row) >= self.flush_rows:
            self._wake.set()

    def submit_feature_values(
        self, product: str, time_us: int, received_us: int, values: tuple[float | None, ...]
    ) -> None:
        """Queue one `features` row from its values in `FEATURE_COLUMNS` order (the fast path)."""
        if len(values) != _N_FEATURES:
            raise ValueError(
                f"expected {_N_FEATURES} feature values in the order {', '.join(FEATURE_COLUMNS)}"
                f", got {len(values)}: {values!r:.200}"
            )
        if self._features.add((product, time_us, received_us, *values)) >= self.flush_rows:
            self._wake.set()

    def submit_prediction(
        self,
        product: str,
        time_us: int,
        received_us: int,
        *,
        horizon_seconds: float,
        probability: float,
        predicted_class: int,
        label: int | None,
        labelled_us: int | None,
    ) -> None:
        """Queue one `predictions` row, written once its label is known (or never will be)."""
        row = (
            product,
            time_us,
            received_us,
            horizon_seconds,
            probability,
            predicted_class,
            label,
            labelled_us,
        )
        if self._predictions.add(row) >= self.flush_rows:
            self._wake.set()

    # --- state -------------------------------------------------------------------------------

    @property
    def storage_open(self) -> bool:
        """Whether the catalog and every table have been opened (the run's readiness)."""
        return len(self._tables) == len(TABLE_NAMES)

    def __len__(self) -> int:
        """Rows held in memory: buffered plus failed batches awaiting a retry."""
        with self._lock:
            pending = sum(b.rows for batches in self._pending.values() for b in batches)
        return sum(len(buf) for buf in self._buffers.values()) + pending

    def rows_held(self) -> dict[str, int]:
        """Rows per table submitted and not committed that this writer still holds: buffered,
        being converted, awaiting a retry, or spilled by this run and not yet recovered."""
        with self._lock:
            held = {
                name: len(buf) + self._spill_waiting[name] for name, buf in self._buffers.items()
            }
            for name, (_, rows, _) in self._converting.items():
                held[name] += rows
            for name, batches in self._pending.items():
                held[name] += sum(b.rows for b in batches)
        return held

    def submitted(self) -> dict[str, int]:
        """Rows submitted per table since the writer started."""
        return {name: buf.added for name, buf in self._buffers.items()}

    def counts(self) -> dict[str, TableCounts]:
        """Row accounting per table: submitted, written, spilled, rejected, recovered."""
        out = {}
        for name, buf in self._buffers.items():
            c = self._counts[name]
            out[name] = TableCounts(buf.added, c.written, c.spilled, c.rejected, c.recovered)
        return out

    def detach_frames(self) -> None:
        """Stop recording frame-log positions (the log is off for the rest of the run)."""
        with self._lock:
            self._frames = None

    def frame_positions(self) -> dict[str, int]:
        """Per table, the highest frame-log position its commits or spill files cover (-1 for
        none); blocking I/O, raises what the catalog raises."""
        positions = {
            name: max(committed_position(self._table(name)), spilled_position(self.data_dir, name))
            for name in TABLE_NAMES
        }
        with self._lock:
            for name, position in positions.items():
                self._durable[name] = max(self._durable[name], position)
        return positions

    def read(self, name: str, limit: int | None = None) -> pa.Table:
        """Rows committed to table `name` by any writer (blocking I/O: not for the feed loop)."""
        identifier = table_def(name).identifier
        return build_catalog(self.config).load_table(identifier).scan(limit=limit).to_arrow()

    def flush(self, timeout: float = 60.0) -> bool:
        """Flush every table now; wait up to `timeout` s; True if a full flush cycle ran."""
        if self._closed:
            return False
        with self._flushed:
            target = self._flush_generation + 1
            self._flush_now.set()
            self._wake.set()
            return self._flushed.wait_for(lambda: self._flush_generation >= target, timeout)

    def close(self, timeout: float = 10.0) -> dict[str, TableCounts]:
        """Final flush within `timeout` s; spill what cannot be committed; return the counts."""
        with self._lock:
            closed, self._closed = self._closed, True
        if closed:
            return self.counts()
        for buf in self._buffers.values():
            buf.seal()  # from here on a submit raises instead of missing the final flush
        self._closing.set()
        self._wake.set()
        self._thread.join(max(0.0, timeout - CLOSE_SPILL_RESERVE))
        if self._thread.is_alive():
            log.error("storage writer did not finish within %.1fs: spilling the rest", timeout)
        # Also when the thread died of an unexpected error, or could not spill (disk full).
        if self._thread.is_alive() or self._converting or len(self):
            self._take_over()
        return self.counts()

    # --- the flusher thread ------------------------------------------------------------------

    def _run(self) -> None:
        warm_up(TABLES["raw_orderbook"])
        try:  # open the catalog and create the tables before the first flush needs them
            self._table(TABLE_NAMES[0])
        except Exception as exc:
            # One line: SQLAlchemy's messages go on with the SQL and a "Background" link.
            reason = next(iter(str(exc).splitlines()), type(exc).__name__)
            log.warning("catalog not reachable at start, will retry at the first flush: %s", reason)
        next_due = self._clock() + self.flush_interval
        while True:
            self._wake.wait(max(0.0, next_due - self._clock()))
            self._wake.clear()
            closing = self._closing.is_set()
            forced = self._flush_now.is_set()
            self._flush_now.clear()
            now = self._clock()
            timed_out = now >= next_due
            for name in TABLE_NAMES:
                if self._abandoned:
                    break  # close() took every row over; recovering spills would only delay it
                if closing or forced or timed_out or len(self._buffers[name]) >= self.flush_rows:
                    self._flush_table(name, final=closing, force=forced)
                if self._spills_waiting[name] and not self._pending_batches(name):
                    self._recover_spills(name)
            if timed_out or forced:
                next_due = self._clock() + self.flush_interval
            with self._flushed:
                self._flush_generation += 1
                self._flushed.notify_all()
            if closing or self._abandoned:
                return

    def _flush_table(self, name: str, *, final: bool, force: bool) -> None:
        buf = self._buffers[name]
        backing_off = self._clock() < self._retry_at[name] and not (final or force)
        in_memory = len(buf) + sum(b.rows for b in self._pending_batches(name))
        if backing_off and in_memory <= self.buffer_rows:
            return
        self._take_buffer(name)
        pending = self._pending_batches(name)
        if not pending:
            return
        if not backing_off:
            result = self._commit(name, pending)
            if result.error is None:
                self._retry_wait[name] = RETRY_MIN
                self._retry_at[name] = 0.0
                return
            self._retry_at[name] = self._clock() + self._retry_wait[name]
            self._retry_wait[name] = min(RETRY_MAX, self._retry_wait[name] * 2)
        if final or sum(b.rows for b in pending) > self.buffer_rows:
            self._spill(name)

    def _still_owner(self) -> bool:
        """False on the flusher thread once close() took its rows over; call holding `_lock`."""
        return not self._abandoned or threading.current_thread() is not self._thread

    def _pending_batches(self, name: str) -> list[Batch]:
        """A copy of the table's pending batches, oldest first (none once close() took over)."""
        with self._lock:
            return list(self._pending[name]) if self._still_owner() else []

    def _frame_lock(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext() if self._frames is None else self._frames.lock

    def _take_buffer(self, name: str) -> None:
        """Drain the table's buffer into a pending batch, the drained rows visible to close()."""
        buf = self._buffers[name]
        frames = self._frames
        with self._frame_lock(), self._lock:
            rows = len(buf)
            position = None if frames is None else frames.position
            if not self._still_owner():
                return
            if not rows:
                idle = not self._pending[name] and name not in self._converting
                if idle and frames is not None and frames.live:
                    self._durable_to(name, position)  # none of this table's rows in flight
                return
            drained = buf.drain()
            self._converting[name] = (drained, rows, position)
        self._add_batch(name, drained, position)

    def _add_batch(self, name: str, drained: Any, position: int | None) -> None:
        """Convert drained rows and append them as a pending batch, unless no longer owner."""
        data, rejected = self._buffers[name].to_arrow(drained)
        with self._lock:
            if not self._still_owner():
                return  # close() took `drained` over and converts it itself
            self._converting.pop(name, None)
            self._counts[name].rejected += rejected
            if data.num_rows:
                self._pending[name].append(Batch(name, new_batch_id(), data, position=position))

    def _durable_to(self, name: str, position: int | None) -> None:
        """Table `name` holds every row of the frames up to `position` durably; call holding
        `_lock`. Releases the frame log up to where every raw table does."""
        if position is None or position <= self._durable[name]:
            return
        self._durable[name] = position
        if self._frames is not None and name in RAW_TABLES:
            self._frames.release(min(self._durable[t] for t in RAW_TABLES))

    def _settle(self, name: str, batches: list[Batch]) -> bool:
        """Drop `batches` (committed or spilled) from the table's pending ones, if still owner.

        Returns whether the caller may count them; call holding `_lock`.
        """
        if not self._still_owner():
            return False
        done = {id(b) for b in batches}
        self._pending[name] = [b for b in self._pending[name] if id(b) not in done]
        return True

    def _table(self, name: str) -> Table:
        # Also called by `frame_positions` on the runner's thread: two threads creating a new
        # SQLite catalog's schema at once fail with "table iceberg_tables already exists".
        with self._catalog_lock:
            if name not in self._tables:
                if self._catalog is None:
                    self._catalog = build_catalog(self.config)
                self._tables.update(ensure_tables(self._catalog))
            return self._tables[name]

    @starts_at_zero(
        ROWS_WRITTEN, FLUSHES, FLUSH_ERRORS, SPILLED_ROWS, FLUSH_DURATION, FLUSH_ROWS,
        labels_from_result=_table_labels,
    )  # fmt: skip
    def _writes(self) -> tuple[str, ...]:
        """The tables this writer writes: their counters read 0 from its start, so the first
        push already carries them (the same samples as the rows the pipeline produced)."""
        return tuple(self._buffers)

    @counted(ROWS_WRITTEN, amount=_rows, labels_from_result=FlushResult.ok)
    @counted(FLUSHES, labels_from_result=FlushResult.ok)
    @counted(FLUSH_ERRORS, labels_from_result=FlushResult.failed)
    @recorded(FLUSH_ROWS, value=_rows, labels_from_result=FlushResult.ok)
    @timed(FLUSH_DURATION, labels_from_args=lambda self, name, batches: {"table": name})
    def _commit(self, name: str, batches: list[Batch]) -> FlushResult:
        """Append the table's pending batches in one commit; never raises."""
        rows = sum(b.rows for b in batches)
        try:
            committed = commit_batches(self._table(name), batches)
        except Exception as exc:  # any failure is retried later or spilled, never lost
            log.warning("flush of %d %s rows failed, will retry: %s", rows, name, exc)
            return FlushResult(name, rows, f"{type(exc).__name__}: {exc}")
        written = sum(b.rows for b in committed)
        with self._lock:
            if self._settle(name, batches):
                self._counts[name].written += written
                self._durable_to(name, covered_position(batches))
        return FlushResult(name, written)

    @counted(SPILLED_ROWS, amount=_rows, labels_from_result=FlushResult.ok)
    def _spill(self, name: str) -> FlushResult:
        """Move the table's pending batches to spill files; never raises.

        A batch that cannot be written (disk full) stays in memory for the next attempt.
        """
        written: list[Batch] = []
        for batch in self._pending_batches(name):
            try:
                write_spill(self.data_dir, batch)
            except Exception as exc:
                log.error("cannot spill %d %s rows, keeping them: %s", batch.rows, name, exc)
                break
            written.append(batch)
        spilled = sum(b.rows for b in written)
        with self._lock:
            if not self._settle(name, written):
                return FlushResult(name, 0)  # close() took these over and spills them itself
            self._spilled_ids.update(b.batch_id for b in written)
            self._counts[name].spilled += spilled
            self._durable_to(name, covered_position(written))
            self._spill_waiting[name] += spilled
            self._spills_waiting[name] = True
        log.warning("spilled %d %s rows to %s", spilled, name, self.data_dir / "spill" / name)
        return FlushResult(name, spilled)

    @counted(ROWS_WRITTEN, amount=_rows, labels_from_result=FlushResult.ok)
    @counted(FLUSH_ERRORS, labels_from_result=FlushResult.failed)
    def _recover_spills(self, name: str) -> FlushResult:
        """Commit the table's spill files, if the backoff allows; never raises."""
        if self._clock() < self._retry_at[name]:
            return FlushResult(name, 0)
        if not spill_files(self.data_dir, name):
            self._spills_waiting[name] = False
            return FlushResult(name, 0)
        try:
            committed = recover_table(self.data_dir, self._table(name), name)
        except Exception as exc:
            log.warning("recovering %s spill files failed, will retry: %s", name, exc)
            self._retry_at[name] = self._clock() + self._retry_wait[name]
            self._retry_wait[name] = min(RETRY_MAX, self._retry_wait[name] * 2)
            return FlushResult(name, 0, f"{type(exc).__name__}: {exc}")
        with self._lock:
            if self._still_owner():
                ours = sum(b.rows for b in committed if b.batch_id in self._spilled_ids)
                self._counts[name].written += ours
                self._spill_waiting[name] -= ours
                self._counts[name].recovered += sum(b.rows for b in committed) - ours
                self._spills_waiting[name] = False
        return FlushResult(name, sum(b.rows for b in committed))

    def _take_over(self) -> None:
        """Take every row from the flusher thread that missed the deadline and spill it here."""
        with self._frame_lock(), self._lock:
            self._abandoned = True
            converting = {name: (rows, at) for name, (rows, _, at) in self._converting.items()}
            self._converting = {}
            position = None if self._frames is None else self._frames.position
            drained = {name: buf.drain() for name, buf in self._buffers.items() if len(buf)}
        for name in TABLE_NAMES:
            if name in converting:
                self._add_batch(name, *converting[name])
            if name in drained:
                self._add_batch(name, drained[name], position)
            if self._pending_batches(name):
                self._spill(name)
