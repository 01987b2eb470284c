"""A full-depth Level 2 order book with exact Decimal prices.

Each side keeps a dict price -> size and a list of its prices kept sorted with `bisect`, so an
update costs a dict write plus (for a new or removed level) one binary search and list shift,
and `top(n)` reads the ends of the list without sorting anything.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from decimal import Decimal

from quotewatch.events import BookSnapshot, BookUpdate, Level

_ZERO = Decimal(0)


class _Side:
    """One side: sizes by price and the prices in ascending order."""

    __slots__ = ("prices", "sizes")

    def __init__(self, levels: tuple[Level, ...] = ()) -> None:
        self.sizes: dict[Decimal, Decimal] = {p: s for p, s in levels if s > _ZERO}
        self.prices: list[Decimal] = sorted(self.sizes)


class OrderBook:
    """The book of one product: snapshot replaces, updates set the total size at a price."""

    __slots__ = ("_asks", "_bids", "product", "ready")

    def __init__(self, product: str) -> None:
        self.product = product
        # True once a snapshot arrived; cleared when the book is known to be stale.
        self.ready = False
        self._bids = _Side()
        self._asks = _Side()

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.product!r}, bids={len(self._bids.prices)}, "
            f"asks={len(self._asks.prices)}, ready={self.ready})"
        )

    def apply_snapshot(self, snap: BookSnapshot) -> None:
        """Replace the whole book with the snapshot's levels."""
        self._bids = _Side(snap.bids)
        self._asks = _Side(snap.asks)
        self.ready = True

    def apply_update(self, update: BookUpdate) -> None:
        """Set each changed level to its new total size (0 removes the level)."""
        for side_name, price, size in update.changes:
            side = self._bids if side_name == "bid" else self._asks
            sizes = side.sizes
            if size:
                if price not in sizes:
                    insort(side.prices, price)
                sizes[price] = size
            elif price in sizes:
                del sizes[price]
                prices = side.prices
                del prices[bisect_left(prices, price)]

    def clear(self) -> None:
        """Empty the book and mark it not ready until the next snapshot."""
        self._bids = _Side()
        self._asks = _Side()
        self.ready = False

    def best_bid(self) -> Level | None:
        """Highest bid (price, size), or None."""
        prices = self._bids.prices
        if not prices:
            return None
        price = prices[-1]
        return price, self._bids.sizes[price]

    def best_ask(self) -> Level | None:
        """Lowest ask (price, size), or None."""
        prices = self._asks.prices
        if not prices:
            return None
        price = prices[0]
        return price, self._asks.sizes[price]

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` bids (descending) and asks (ascending)."""
        bid_sizes, ask_sizes = self._bids.sizes, self._asks.sizes
        bids = [(p, bid_sizes[p]) for p in reversed(self._bids.prices[-n:])] if n > 0 else []
        asks = [(p, ask_sizes[p]) for p in self._asks.prices[:n]]
        return bids, asks

    def levels(self) -> tuple[list[Level], list[Level]]:
        """Every level, bids descending and asks ascending."""
        return self.top(max(len(self._bids.prices), len(self._asks.prices)))

    def depth(self) -> tuple[int, int]:
        """Number of bid and ask levels."""
        return len(self._bids.prices), len(self._asks.prices)

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask."""
        bids, asks = self._bids.prices, self._asks.prices
        return bool(bids and asks and bids[-1] >= asks[0])
