"""Parquet spill files for batches that could not be committed, and their recovery.

A spill file is `<data_dir>/spill/<table>/<batch id>.parquet`, written to a temporary name and
renamed, so a file that exists is complete. Recovery commits spill files through
`commit_batches`, which skips batch ids already recorded in a snapshot, and deletes a file only
after its batch is committed: a crash between the commit and the delete leaves a file whose id
the next recovery finds in the table, so it is deleted without being appended twice. A batch's
frame-log position is kept in the file's Parquet metadata: spilled rows are durable, so they
count as covered for the frame log (see `quotewatch.wal.recovery`).
A lock file per table keeps two recoveries from working on the same files at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from quotewatch.storage.commit import POSITION_PROPERTY, Batch, commit_batches
from quotewatch.storage.tables import table_def

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = logging.getLogger(__name__)

# Spill files recovered per commit: bounds memory and keeps one commit small.
RECOVER_FILES_PER_COMMIT = 20
_POSITION_KEY = POSITION_PROPERTY.encode()


def spill_dir(data_dir: Path, table: str) -> Path:
    """`<data_dir>/spill/<table>`."""
    return data_dir / "spill" / table


def write_spill(data_dir: Path, batch: Batch) -> Path:
    """Write `batch` to its spill file atomically and durably; return the path."""
    directory = spill_dir(data_dir, batch.table)
    final = directory / f"{batch.batch_id}.parquet"
    tmp = directory / f".{batch.batch_id}.parquet.tmp"
    data = batch.data
    if batch.position is not None:
        metadata = dict(data.schema.metadata or {})
        metadata[_POSITION_KEY] = str(batch.position).encode()
        data = data.replace_schema_metadata(metadata)
    with spill_lock(data_dir, batch.table):
        with tmp.open("wb") as f:
            pq.write_table(data, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(final)
    return final


def spill_files(data_dir: Path, table: str) -> list[Path]:
    """Spill files waiting for `table`, oldest first."""
    directory = spill_dir(data_dir, table)
    return sorted(directory.glob("*.parquet")) if directory.is_dir() else []


def _position(path: Path) -> int | None:
    value = (pq.read_schema(path).metadata or {}).get(_POSITION_KEY)
    return None if value is None else int(value)


def read_spill(path: Path, table: str) -> Batch:
    """Load a spill file as a batch that may already have been committed."""
    data = pq.read_table(path, schema=table_def(table).arrow_schema)
    return Batch(table, path.stem, data, attempted=True, position=_position(path))


def spilled_position(data_dir: Path, table: str) -> int:
    """The highest frame-log position of `table`'s spill files, or -1."""
    positions = (_position(path) for path in spill_files(data_dir, table))
    return max((p for p in positions if p is not None), default=-1)


@contextmanager
def spill_lock(data_dir: Path, table: str) -> Iterator[None]:
    """Hold an exclusive lock on the table's spill directory."""
    directory = spill_dir(data_dir, table)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def recover_table(data_dir: Path, table: Table, name: str) -> list[Batch]:
    """Commit every spill file of table `name` exactly once; return the batches appended."""
    appended: list[Batch] = []
    with spill_lock(data_dir, name):
        for stale in spill_dir(data_dir, name).glob(".*.tmp"):
            stale.unlink()  # a spill interrupted before its rename; its rows were never on disk
        files = spill_files(data_dir, name)
        for start in range(0, len(files), RECOVER_FILES_PER_COMMIT):
            chunk = files[start : start + RECOVER_FILES_PER_COMMIT]
            batches = [read_spill(path, name) for path in chunk]
            committed = commit_batches(table, batches)
            appended += committed
            for path in chunk:
                path.unlink()
            log.info(
                "recovered %d spill files of %s: %d rows appended, %d already committed",
                len(chunk),
                name,
                sum(b.rows for b in committed),
                len(batches) - len(committed),
            )
    return appended


def recover(data_dir: Path, tables: Mapping[str, Table]) -> dict[str, int]:
    """Recover the spill files of every table; return rows appended per table."""
    return {
        name: sum(b.rows for b in recover_table(data_dir, table, name))
        for name, table in tables.items()
    }
