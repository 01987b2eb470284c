"""In-memory row buffers, one per table, and their conversion to Arrow.

`add` runs on the feed's thread, so it only appends to Python lists under a short lock; the
Arrow conversion happens on the writer's thread after `drain`. The order book buffer keeps all
40 level values of a row in one flat list (one `extend` per side instead of 40 appends, and no
per-row container objects for the garbage collector to walk); column `k` is then `flat[k::40]`.
`seal` (under the same lock) makes every later `add` raise, so a row submitted while the writer
closes is either in the final drain or refused, never silently left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from itertools import chain
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from quotewatch.rows import BOOK_DEPTH
from quotewatch.storage.tables import PRICE_PRECISION, PRICE_SCALE, TableDef

log = logging.getLogger(__name__)

Level = tuple[Decimal, Decimal]
_PAD: tuple[Any, ...] = ((None, None),) * BOOK_DEPTH
_BOOK_VALUES = 4 * BOOK_DEPTH  # price and size per level per side
_CLOSED = "the storage writer is closed: rows submitted after close() would be lost"


class WriterClosedError(RuntimeError):
    """A row was submitted after `close()`."""


class Buffer(Protocol):
    """What the writer needs from a table's buffer."""

    tdef: TableDef
    added: int  # rows accepted since creation

    def __len__(self) -> int: ...

    def drain(self) -> Any:
        """Take every buffered row, leaving the buffer empty."""

    def seal(self) -> None:
        """Refuse every later `add` with `WriterClosedError`."""

    def to_arrow(self, drained: Any) -> tuple[pa.Table, int]:
        """Convert drained rows; return the table and how many bad rows were dropped."""


class RowBuffer:
    """Rows of a low-rate table as tuples in the table's column order."""

    def __init__(self, tdef: TableDef) -> None:
        self.tdef = tdef
        self._width = len(tdef.columns)
        self._rows: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._sealed = False
        self.added = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: tuple[Any, ...]) -> int:
        """Append one row; return the number of buffered rows."""
        if len(row) != self._width:
            raise ValueError(
                f"{self.tdef.name} rows have {self._width} values "
                f"({', '.join(self.tdef.columns)}), got {len(row)}"
            )
        with self._lock:
            if self._sealed:
                raise WriterClosedError(_CLOSED)
            self._rows.append(row)
            self.added += 1
            return len(self._rows)

    def drain(self) -> list[tuple[Any, ...]]:
        """Take every buffered row, leaving the buffer empty."""
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def seal(self) -> None:
        """Refuse every later `add` with `WriterClosedError`."""
        with self._lock:
            self._sealed = True

    def to_arrow(self, drained: list[tuple[Any, ...]]) -> tuple[pa.Table, int]:
        """Convert drained rows; rows that do not fit the schema are logged and dropped."""
        schema = self.tdef.arrow_schema
        try:
            return _columns_to_table(schema, list(zip(*drained, strict=True))), 0
        except (pa.ArrowException, TypeError, ValueError):
            good = [row for row in drained if _row_fits(self.tdef, row)]
            table = _columns_to_table(schema, list(zip(*good, strict=True)))
            return table, len(drained) - len(good)


class BookBuffer:
    """`raw_orderbook` rows: product and times per row, plus 40 level values in one flat list."""

    def __init__(self, tdef: TableDef) -> None:
        self.tdef = tdef
        self._products: list[str] = []
        self._times: list[int] = []
        self._received: list[int] = []
        self._levels: list[Decimal | None] = []
        self._lock = threading.Lock()
        self._sealed = False
        self.added = 0

    def __len__(self) -> int:
        return len(self._products)

    def add(
        self,
        product: str,
        time_us: int,
        received_us: int,
        bids: Sequence[Level],
        asks: Sequence[Level],
    ) -> int:
        """Append one book state (top levels best-first); return the number of buffered rows."""
        if len(bids) != BOOK_DEPTH:
            bids = [*bids[:BOOK_DEPTH], *_PAD[len(bids) :]]
        if len(asks) != BOOK_DEPTH:
            asks = [*asks[:BOOK_DEPTH], *_PAD[len(asks) :]]
        with self._lock:
            if self._sealed:
                raise WriterClosedError(_CLOSED)
            levels = self._levels
            levels.extend(chain.from_iterable(bids))
            levels.extend(chain.from_iterable(asks))
            n = len(self._products) + 1
            if len(levels) != n * _BOOK_VALUES:
                del levels[(n - 1) * _BOOK_VALUES :]
                raise ValueError(
                    f"raw_orderbook levels must be (price, size) pairs, got bids={bids!r:.200} "
                    f"asks={asks!r:.200}"
                )
            self._products.append(product)
            self._times.append(time_us)
            self._received.append(received_us)
            self.added += 1
            return n

    def drain(self) -> tuple[list[str], list[int], list[int], list[Decimal | None]]:
        """Take every buffered row, leaving the buffer empty."""
        with self._lock:
            drained = (self._products, self._times, self._received, self._levels)
            self._products, self._times, self._received, self._levels = [], [], [], []
        return drained

    def seal(self) -> None:
        """Refuse every later `add` with `WriterClosedError`."""
        with self._lock:
            self._sealed = True

    def to_arrow(
        self, drained: tuple[list[str], list[int], list[int], list[Decimal | None]]
    ) -> tuple[pa.Table, int]:
        """Convert drained rows; rows with a value that does not fit are logged and dropped."""
        products, times, received, levels = drained
        columns: list[Any] = [products, times, received]
        try:
            columns += _level_arrays(levels, len(products))
            return _columns_to_table(self.tdef.arrow_schema, columns), 0
        except (pa.ArrowException, TypeError, ValueError):
            columns[3:] = [levels[k::_BOOK_VALUES] for k in _SCHEMA_ORDER]
            rows = list(zip(*columns, strict=True))
            good = [row for row in rows if _row_fits(self.tdef, row)]
            table = _columns_to_table(self.tdef.arrow_schema, list(zip(*good, strict=True)))
            return table, len(rows) - len(good)


# Flat layout per row: bid (p, s) x 10 then ask (p, s) x 10; schema order is bid_price_0..9,
# bid_size_0..9, ask_price_0..9, ask_size_0..9. _SCHEMA_ORDER[i] is the flat offset of column i.
_SCHEMA_ORDER = [
    side * 2 * BOOK_DEPTH + 2 * level + kind
    for side in (0, 1)
    for kind in (0, 1)
    for level in range(BOOK_DEPTH)
]
_DECIMAL = pa.decimal128(PRICE_PRECISION, PRICE_SCALE)
_CHUNK = 8_192  # level values per GIL-holding step (~1 ms)


def _level_arrays(levels: list[Decimal | None], rows: int) -> list[Any]:
    """The 40 level columns, converting each distinct value once when values repeat.

    Consecutive book states share most of their Decimal objects (one level changes per
    update), so a flush holds few distinct values; converting those once and gathering them by
    index is ~3x cheaper than converting 40 values per row. With little repetition the columns
    are converted directly.
    """
    # Work in chunks, yielding between them: one C call over a whole flush would hold the GIL
    # (and freeze the feed's event loop) for tens of milliseconds.
    unique: dict[Decimal | None, None] = {}
    for start in range(0, len(levels), _CHUNK):
        unique |= dict.fromkeys(levels[start : start + _CHUNK])
        time.sleep(0)
    if len(unique) * 4 > len(levels):
        return [levels[k::_BOOK_VALUES] for k in _SCHEMA_ORDER]
    values = pa.array(list(unique), type=_DECIMAL)
    index = dict(zip(unique, range(len(unique)), strict=True))
    codes = np.empty(len(levels), dtype=np.int32)
    for start in range(0, len(levels), _CHUNK):
        chunk = levels[start : start + _CHUNK]
        codes[start : start + len(chunk)] = np.fromiter(
            map(index.__getitem__, chunk), dtype=np.int32, count=len(chunk)
        )
        time.sleep(0)
    by_column = np.ascontiguousarray(codes.reshape(rows, _BOOK_VALUES).T)
    arrays = []
    for k in _SCHEMA_ORDER:
        arrays.append(values.take(pa.array(by_column[k])))
        time.sleep(0)
    return arrays


def warm_up(tdef: TableDef) -> None:
    """Run the order book conversion once on two rows.

    The first conversion in a process pays one-time set-up (tens of ms holding the GIL); the
    writer does it at start-up rather than in its first flush, while the feed is running.
    """
    level = (Decimal(1), Decimal(1))
    book = BookBuffer(tdef)
    for _ in range(2):
        book.add("WARM-UP", 0, 0, [level] * BOOK_DEPTH, [level] * BOOK_DEPTH)
    book.to_arrow(book.drain())


def _columns_to_table(schema: pa.Schema, columns: list[Any]) -> pa.Table:
    if not columns:
        return schema.empty_table()
    arrays = []
    for col, field in zip(columns, schema, strict=True):
        arrays.append(col if isinstance(col, pa.Array) else pa.array(col, type=field.type))
        # Converting a column holds the GIL for its whole length; yielding between columns lets
        # the feed's event loop run instead of waiting out the interpreter's 5 ms switch interval.
        time.sleep(0)
    for array, field in zip(arrays, schema, strict=True):
        if not field.nullable and array.null_count:
            raise ValueError(f"column {field.name!r} is required but has nulls")
    return pa.Table.from_arrays(arrays, schema=schema)


def _row_fits(tdef: TableDef, row: tuple[Any, ...]) -> bool:
    try:
        _columns_to_table(tdef.arrow_schema, [[value] for value in row])
    except (pa.ArrowException, TypeError, ValueError) as exc:
        log.error("dropping a %s row that does not fit (%s): %.300r", tdef.name, exc, row)
        return False
    return True
