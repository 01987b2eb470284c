"""Row reconciliation from storage's side: the writer's own accounting per table (rows
submitted, written, spilled, rejected, recovered) and the rows the catalog holds.

Completeness here is rows this writer committed divided by rows submitted to it; the run
summary (`quotewatch.app.summary`) measures it against the rows the pipeline produced. Rows
still in spill files count as not yet written, so an outage that has not been recovered shows
as completeness below 1.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from quotewatch.rows import TABLE_NAMES
from quotewatch.storage.tables import table_def

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from quotewatch.storage.writer import StorageWriter


def summary(writer: StorageWriter) -> dict[str, Any]:
    """The writer's accounting per table (call after `writer.close()`).

    Returns `{"rows_written": {table: n}, "completeness": {table: ratio}, "tables": {table:
    {submitted, written, spilled, rejected, recovered}}}`. A table nothing was submitted to has
    completeness 1.0.
    """
    counts = writer.counts()
    return {
        "rows_written": {name: c.written for name, c in counts.items()},
        "completeness": {
            name: (c.written / c.submitted if c.submitted else 1.0) for name, c in counts.items()
        },
        "tables": {name: asdict(c) for name, c in counts.items()},
    }


def table_row_counts(catalog: Catalog) -> dict[str, int]:
    """Rows currently in each quotewatch table, read from the catalog (0 for a missing table)."""
    counts = {}
    for name in TABLE_NAMES:
        identifier = table_def(name).identifier
        if catalog.table_exists(identifier):
            counts[name] = int(catalog.load_table(identifier).scan().count())
        else:
            counts[name] = 0
    return counts
