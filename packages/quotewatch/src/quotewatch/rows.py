"""The rows the pipeline produces and storage writes: table names, the features row's column
order, the book depth kept per row, and `RowSink`, the interface between the two.

Both `quotewatch.pipeline` (which produces rows) and `quotewatch.storage` (which writes them,
`StorageWriter` being the one `RowSink`) import this module and neither imports the other.

Times are `int` microseconds since the epoch, UTC; prices and sizes are `decimal.Decimal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from quotewatch.events import Level, Trade

TABLE_NAMES: tuple[str, ...] = ("raw_orderbook", "raw_trades", "features", "predictions")

# The model's inputs, in the order feature vectors hold them.
FEATURE_NAMES: tuple[str, ...] = (
    "spread_bps",
    "imbalance",
    "imbalance_weighted",
    "depth",
    "volatility",
    "trade_imbalance",
)
# A features row: the mid, then every feature in `FEATURE_NAMES` order.
FEATURE_COLUMNS: tuple[str, ...] = ("mid", *FEATURE_NAMES)
# Levels per side a raw_orderbook row keeps; levels the book does not have are null.
BOOK_DEPTH = 10


class RowSink(Protocol):
    """Where storage rows go. Each call queues one row and returns at once (no I/O)."""

    def submit_orderbook(
        self,
        product: str,
        time_us: int,
        received_us: int,
        bids: Sequence[Level],
        asks: Sequence[Level],
    ) -> None:
        """Queue one raw_orderbook row: the top levels, best first, as `OrderBook.top` returns
        them; only the first `BOOK_DEPTH` of each side are kept."""

    def submit_trade(self, trade: Trade) -> None:
        """Queue one raw_trades row."""

    def submit_feature_values(
        self, product: str, time_us: int, received_us: int, values: tuple[float | None, ...]
    ) -> None:
        """Queue one features row from its values in `FEATURE_COLUMNS` order."""

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
        """Queue one predictions row, written once its label is known: `time_us` is the time
        of the features it was made from, `labelled_us` when the label became known (both
        `label` and `labelled_us` None for a prediction never labelled)."""
