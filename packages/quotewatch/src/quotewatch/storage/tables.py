"""The four quotewatch Iceberg tables: schemas, partitioning, idempotent creation, row shapes.

Every table lives in namespace `quotewatch`, starts with the same three columns and is
partitioned by `day(event_time)` and `identity(product)`:

- `product` (string): e.g. "BTC-USD".
- `event_time` (timestamptz, UTC, microseconds): the exchange's time for the event. For a book
  snapshot without an exchange time, the caller passes the receive time.
- `received_at` (timestamptz, UTC, microseconds): when quotewatch received the message.

Prices and sizes are `decimal(38, 18)`: 20 integer and 18 fractional digits hold every crypto
price and size exactly (Coinbase quotes at most 8 decimals; 18 covers wei-level amounts), and a
value that would not fit is never rounded: its row is dropped, logged and counted as rejected.

How rows arrive is `quotewatch.rows.RowSink` (times in microseconds, exact prices); how they
are stored:

- `raw_orderbook`: `bid_price_0..9`, `bid_size_0..9`, `ask_price_0..9`, `ask_size_0..9`
  (`BOOK_DEPTH` levels per side); levels the book does not have are null.
- `raw_trades`: `trade_id` (long), `price`, `size`, `taker_side` ("buy" or "sell") and `source`
  ("ws", or "rest" for trades backfilled from the REST API; null in rows written before it).
- `features`: one double per name in `FEATURE_COLUMNS` (the mid, then the model's features).
  `mid` is a float like the other model inputs; exact prices are in `raw_orderbook`.
- `predictions`: `horizon_seconds`, `probability`, `predicted_class`, and the outcome `label`
  and `labelled_at`, null for a prediction never labelled. A prediction is written ONCE, when
  its label is known, so no table update is ever needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from quotewatch.rows import BOOK_DEPTH, FEATURE_COLUMNS, TABLE_NAMES

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

NAMESPACE = "quotewatch"
PRICE_PRECISION, PRICE_SCALE = 38, 18
# Commit retries are done by pyiceberg itself (it rebuilds only the manifests). A table
# committing every 10 s would otherwise pile up metadata files (pruned to the last 50) and one
# manifest per commit that every later commit lists (merged once there are 100).
TABLE_PROPERTIES = {
    "commit.manifest-merge.enabled": "true",
    "commit.retry.num-retries": "10",
    "commit.retry.min-wait-ms": "20",
    "commit.retry.max-wait-ms": "2000",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
    "write.parquet.compression-codec": "zstd",
}

_DECIMAL = DecimalType(PRICE_PRECISION, PRICE_SCALE)


def _book_columns() -> list[tuple[str, IcebergType, bool]]:
    return [
        (f"{side}_{kind}_{level}", _DECIMAL, False)
        for side in ("bid", "ask")
        for kind in ("price", "size")
        for level in range(BOOK_DEPTH)
    ]


_COMMON: list[tuple[str, IcebergType, bool]] = [
    ("product", StringType(), True),
    ("event_time", TimestamptzType(), True),
    ("received_at", TimestamptzType(), True),
]
_COLUMNS: dict[str, list[tuple[str, IcebergType, bool]]] = {
    "raw_orderbook": _COMMON + _book_columns(),
    "raw_trades": [
        *_COMMON,
        ("trade_id", LongType(), True),
        ("price", _DECIMAL, True),
        ("size", _DECIMAL, True),
        ("taker_side", StringType(), True),
        # "ws" or "rest" (backfilled); optional, so tables made before it gain it in place.
        ("source", StringType(), False),
    ],
    "features": _COMMON + [(name, DoubleType(), False) for name in FEATURE_COLUMNS],
    "predictions": [
        *_COMMON,
        ("horizon_seconds", DoubleType(), True),
        ("probability", DoubleType(), True),
        ("predicted_class", IntegerType(), True),
        ("label", IntegerType(), False),
        ("labelled_at", TimestamptzType(), False),
    ],
}


@dataclass(frozen=True)
class TableDef:
    """One table: its name, Iceberg schema and partition spec, and the Arrow schema rows use."""

    name: str
    schema: Schema
    spec: PartitionSpec
    arrow_schema: pa.Schema

    @property
    def identifier(self) -> str:
        """`quotewatch.<name>`."""
        return f"{NAMESPACE}.{self.name}"

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names in schema order."""
        return tuple(self.arrow_schema.names)


def _define(name: str) -> TableDef:
    fields = [
        NestedField(i, col, typ, required=req)
        for i, (col, typ, req) in enumerate(_COLUMNS[name], start=1)
    ]
    schema = Schema(*fields)
    spec = PartitionSpec(
        PartitionField(source_id=2, field_id=1000, transform=DayTransform(), name="event_day"),
        PartitionField(source_id=1, field_id=1001, transform=IdentityTransform(), name="product"),
    )
    # Files quotewatch writes carry no field ids; Iceberg maps them by name (add_files sets the
    # table's name mapping), and plain strings keep them readable by any Parquet tool.
    arrow = schema_to_pyarrow(schema, include_field_ids=False)
    arrow = pa.schema(
        [f.with_type(pa.string()) if f.type == pa.large_string() else f for f in arrow]
    )
    return TableDef(name, schema, spec, arrow)


TABLES: dict[str, TableDef] = {name: _define(name) for name in TABLE_NAMES}


def table_def(name: str) -> TableDef:
    """Return the definition of table `name`, or raise a KeyError naming the valid tables."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}: expected one of {', '.join(TABLES)}") from None


def ensure_tables(catalog: Catalog, names: Iterable[str] = TABLE_NAMES) -> dict[str, Table]:
    """Create the namespace and tables that do not exist yet (safe to run concurrently)."""
    catalog.create_namespace_if_not_exists(NAMESPACE)
    tables: dict[str, Table] = {}
    for name in names:
        tdef = table_def(name)
        table = catalog.create_table_if_not_exists(
            tdef.identifier, tdef.schema, partition_spec=tdef.spec, properties=TABLE_PROPERTIES
        )
        if {f.name for f in tdef.schema.fields} - {f.name for f in table.schema().fields}:
            # A table from an older quotewatch: add the optional columns it lacks.
            with table.update_schema() as update:
                update.union_by_name(tdef.schema)
            table = catalog.load_table(tdef.identifier)
        tables[name] = table
    return tables
