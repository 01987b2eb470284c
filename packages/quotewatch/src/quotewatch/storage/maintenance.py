"""Table maintenance and inspection: expire snapshots, compact a day, list tables, show rows.

Every flush commits a snapshot and one small file per product, so a table gains up to 8,640
snapshots a day with the default 10 s flush. `expire` drops old snapshots from the metadata;
`compact` rewrites a finished day's files into one file per product in one commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import parquet_file_to_data_file

from quotewatch.rows import TABLE_NAMES
from quotewatch.storage.commit import (
    BATCH_PROPERTY,
    POSITION_PROPERTY,
    Batch,
    committed_position,
    new_batch_id,
    write_data_files,
)
from quotewatch.storage.tables import table_def

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table


class CompactionError(RuntimeError):
    """Rewritten files would not hold exactly the rows of the files they replace."""


@dataclass(frozen=True)
class TableInfo:
    """One table's summary for `quotewatch storage tables`."""

    name: str
    rows: int
    files: int
    snapshots: int
    bytes: int
    last_commit: dt.datetime | None


@dataclass(frozen=True)
class CompactResult:
    """What compacting one table's day did."""

    table: str
    day: dt.date
    rows: int
    files_before: int
    files_after: int


def _tables(catalog: Catalog, names: tuple[str, ...]) -> list[tuple[str, Table]]:
    out = []
    for name in names:
        identifier = table_def(name).identifier
        if catalog.table_exists(identifier):
            out.append((name, catalog.load_table(identifier)))
    return out


def expire(
    catalog: Catalog, older_than: dt.timedelta, names: tuple[str, ...] = TABLE_NAMES
) -> dict[str, int]:
    """Expire snapshots older than `older_than` (never the current one); return counts."""
    cutoff = dt.datetime.now(dt.UTC) - older_than
    expired = {}
    for name, table in _tables(catalog, names):
        before = len(table.snapshots())
        table.maintenance.expire_snapshots().older_than(cutoff).commit()
        expired[name] = before - len(table.refresh().snapshots())
    return expired


def _day_filter(day: dt.date) -> str:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    end = start + dt.timedelta(days=1)
    return f"event_time >= '{start.isoformat()}' and event_time < '{end.isoformat()}'"


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


def compact_table(table: Table, name: str, day: dt.date) -> CompactResult:
    """Rewrite `day`'s files of one table into one file per product, in one commit.

    The new files are read back and compared with the rows they replace before the commit;
    only the files that were read are removed, so rows appended meanwhile are kept.
    """
    scan = table.scan(row_filter=_day_filter(day))
    old_files = [task.file for task in scan.plan_files()]
    rows_in_files = sum(f.record_count for f in old_files)
    before = scan.to_arrow()
    products = len(set(before.column("product").to_pylist())) if before.num_rows else 0
    if before.num_rows != rows_in_files:
        raise CompactionError(
            f"{name} {day}: the day's files hold {rows_in_files} rows but {before.num_rows} "
            "match the day; refusing to rewrite files that span days"
        )
    if len(old_files) <= products:
        return CompactResult(name, day, before.num_rows, len(old_files), len(old_files))
    data = before.cast(table_def(name).arrow_schema)
    batch_id = new_batch_id()
    paths = write_data_files(table, Batch(name, batch_id, data))
    rewritten = pa.concat_tables(
        [pq.read_table(table.io.new_input(p).open()).cast(data.schema) for p in paths]
    )
    if not _sorted(rewritten).equals(_sorted(data)):
        for path in paths:
            table.io.delete(path)
        raise CompactionError(f"{name} {day}: rewritten files differ from the originals")
    new_files = [parquet_file_to_data_file(table.io, table.metadata, p) for p in paths]
    properties = {BATCH_PROPERTY: batch_id, "quotewatch.compacted-day": day.isoformat()}
    # Carried forward: once `expire` drops the writer's snapshots, the frame log's replay at
    # start still knows what the table covers.
    position = committed_position(table)
    if position >= 0:
        properties[POSITION_PROPERTY] = str(position)
    with (
        table.transaction() as tx,
        tx.update_snapshot(snapshot_properties=properties).overwrite() as rewrite,
    ):
        for old in old_files:
            rewrite.delete_data_file(old)
        for new in new_files:
            rewrite.append_data_file(new)
    return CompactResult(name, day, data.num_rows, len(old_files), len(new_files))


def compact(
    catalog: Catalog, day: dt.date, names: tuple[str, ...] = TABLE_NAMES
) -> list[CompactResult]:
    """Compact `day` in every table."""
    return [compact_table(table, name, day) for name, table in _tables(catalog, names)]


def describe(catalog: Catalog) -> list[TableInfo]:
    """Summaries of the quotewatch tables that exist."""
    infos = []
    for name, table in _tables(catalog, TABLE_NAMES):
        snapshot = table.current_snapshot()
        summary = snapshot.summary if snapshot and snapshot.summary else None
        last = dt.datetime.fromtimestamp(snapshot.timestamp_ms / 1000, dt.UTC) if snapshot else None
        infos.append(
            TableInfo(
                name=name,
                rows=int(summary.get("total-records", 0)) if summary else 0,
                files=int(summary.get("total-data-files", 0)) if summary else 0,
                snapshots=len(table.snapshots()),
                bytes=int(summary.get("total-files-size", 0)) if summary else 0,
                last_commit=last,
            )
        )
    return infos


def head(catalog: Catalog, name: str, n: int = 10) -> pa.Table:
    """The first `n` rows of table `name` (in file order, not sorted)."""
    return catalog.load_table(table_def(name).identifier).scan(limit=n).to_arrow()
