"""Append Arrow batches to an Iceberg table exactly once.

A batch is written as one Parquet file per partition (day of `event_time`, product) straight
into the table's data location, then registered with `add_files` in ONE transaction, i.e. one
commit per flush per table. Writing the files ourselves keeps a retry cheap (the files are
reused; pyiceberg itself retries `CommitFailedException` by rebuilding only the manifests) and
needs no Rust transform library for `day()` partitioning.

Every commit records the ids of its batches in the snapshot summary (`quotewatch.batch-ids`),
and, when the rows came from logged frames, the frame-log position they cover
(`quotewatch.frame-position`, see `quotewatch.wal`).
Before a batch whose earlier attempt may have landed is committed again (a retry after an
error of unknown outcome, or a spill file being recovered) the table is refreshed and batches
whose ids are already in a snapshot are skipped: that is what makes appends exactly-once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from pyiceberg.table import Table

BATCH_PROPERTY = "quotewatch.batch-ids"
POSITION_PROPERTY = "quotewatch.frame-position"


@dataclass
class Batch:
    """Rows bound for one table under a stable id; `attempted` once a commit may have landed.

    `position`: the frame-log position the rows cover (every row of every frame up to it is in
    this batch or an earlier one), or None when they did not come from logged frames.
    """

    table: str
    batch_id: str
    data: pa.Table
    attempted: bool = False
    position: int | None = None

    @property
    def rows(self) -> int:
        """Number of rows in the batch."""
        return int(self.data.num_rows)


def new_batch_id() -> str:
    """A unique id that sorts by creation time (nanoseconds, then random)."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:16]}"


def committed_batch_ids(table: Table) -> set[str]:
    """Ids of every batch recorded in the table's (unexpired) snapshots."""
    ids: set[str] = set()
    for snapshot in table.metadata.snapshots:
        value = snapshot.summary.get(BATCH_PROPERTY) if snapshot.summary else None
        if value:
            ids.update(value.split(","))
    return ids


def committed_position(table: Table) -> int:
    """The highest frame-log position recorded in the table's snapshots, or -1."""
    positions = [
        int(value)
        for snapshot in table.metadata.snapshots
        if snapshot.summary and (value := snapshot.summary.get(POSITION_PROPERTY))
    ]
    return max(positions, default=-1)


def covered_position(batches: Sequence[Batch]) -> int | None:
    """The highest position of `batches`, or None if none has one."""
    return max((b.position for b in batches if b.position is not None), default=None)


def partitions(data: pa.Table) -> Iterable[tuple[str, str, pa.Table]]:
    """Split rows by (UTC day of event_time, product): yields (day, product, rows)."""
    days = pc.cast(data.column("event_time"), pa.date32())
    keyed = data.append_column("_day", days)
    groups = keyed.group_by(["_day", "product"], use_threads=False).aggregate([])
    if groups.num_rows == 1:
        yield str(groups.column("_day")[0]), str(groups.column("product")[0]), data
        return
    for day, product in zip(
        groups.column("_day").to_pylist(), groups.column("product").to_pylist(), strict=True
    ):
        mask = pc.and_(
            pc.equal(keyed.column("_day"), day), pc.equal(keyed.column("product"), product)
        )
        yield str(day), str(product), data.filter(mask)


def write_data_files(table: Table, batch: Batch) -> list[str]:
    """Write the batch as one Parquet file per partition into the table's data location."""
    paths = []
    for k, (day, product, rows) in enumerate(partitions(batch.data)):
        path = (
            f"{table.location()}/data/event_day={day}/product={product}/"
            f"{batch.batch_id}-{k:05d}.parquet"
        )
        with table.io.new_output(path).create(overwrite=True) as stream:
            pq.write_table(rows, stream, compression="zstd")
        paths.append(path)
    return paths


def commit_batches(table: Table, batches: Sequence[Batch]) -> list[Batch]:
    """Append `batches` in one commit, skipping those already committed; return those appended.

    Raises whatever the catalog or file system raises; the batches are then marked `attempted`
    so the next try first checks whether this one landed.
    """
    if any(b.attempted for b in batches):
        table.refresh()
        done = committed_batch_ids(table)
        batches = [b for b in batches if b.batch_id not in done]
    batches = [b for b in batches if b.rows]
    if not batches:
        return []
    paths = [path for batch in batches for path in write_data_files(table, batch)]
    for batch in batches:
        batch.attempted = True
    properties = {BATCH_PROPERTY: ",".join(b.batch_id for b in batches)}
    position = covered_position(batches)
    if position is not None:
        properties[POSITION_PROPERTY] = str(position)
    with table.transaction() as tx:
        tx.add_files(paths, snapshot_properties=properties, check_duplicate_files=False)
    return list(batches)
