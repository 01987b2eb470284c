"""OrderBook against a reference model: full depth, exact prices, top-N and crossing."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from quotewatch.book import OrderBook
from quotewatch.events import BookSide, BookSnapshot, BookUpdate, Change, Level

prices = st.integers(1, 400).map(lambda i: Decimal(i) / 4)  # 0.25 .. 100.00, collisions likely
sizes = st.sampled_from(["0", "0.00000000", "1", "0.5", "2.25", "10"]).map(Decimal)
sides: st.SearchStrategy[BookSide] = st.sampled_from(("bid", "ask"))
levels = st.lists(st.tuples(prices, sizes.filter(bool)), max_size=40)
changes = st.lists(
    st.lists(st.tuples(sides, prices, sizes), min_size=1, max_size=3),
    max_size=60,
)


class Reference:
    """The obvious model: two dicts, sorted on every read."""

    def __init__(self, bids: list[Level], asks: list[Level]) -> None:
        self.sides: dict[str, dict[Decimal, Decimal]] = {"bid": dict(bids), "ask": dict(asks)}

    def apply(self, side: str, price: Decimal, size: Decimal) -> None:
        if size == 0:
            self.sides[side].pop(price, None)
        else:
            self.sides[side][price] = size

    def levels(self) -> tuple[list[Level], list[Level]]:
        bids = sorted(self.sides["bid"].items(), reverse=True)
        asks = sorted(self.sides["ask"].items())
        return bids, asks


@given(levels, levels, changes, st.integers(0, 12))
def test_book_matches_the_reference_model(
    bids: list[Level], asks: list[Level], batches: list[list[Change]], n: int
) -> None:
    book = OrderBook("BTC-USD")
    book.apply_snapshot(BookSnapshot("BTC-USD", tuple(bids), tuple(asks), None, 0))
    model = Reference(bids, asks)
    for batch in batches:
        book.apply_update(BookUpdate("BTC-USD", tuple(batch), 1, 1))
        for side, price, size in batch:
            model.apply(side, price, size)
        want_bids, want_asks = model.levels()
        assert book.levels() == (want_bids, want_asks)
        assert book.top(n) == (want_bids[:n], want_asks[:n])
        assert book.best_bid() == (want_bids[0] if want_bids else None)
        assert book.best_ask() == (want_asks[0] if want_asks else None)
        assert book.depth() == (len(want_bids), len(want_asks))
        crossed = bool(want_bids and want_asks and want_bids[0][0] >= want_asks[0][0])
        assert book.is_crossed() is crossed


@given(levels, levels, levels, levels)
def test_snapshot_replaces_the_whole_book(
    bids1: list[Level], asks1: list[Level], bids2: list[Level], asks2: list[Level]
) -> None:
    book = OrderBook("ETH-USD")
    book.apply_snapshot(BookSnapshot("ETH-USD", tuple(bids1), tuple(asks1), None, 0))
    book.apply_snapshot(BookSnapshot("ETH-USD", tuple(bids2), tuple(asks2), None, 0))
    assert book.levels() == Reference(bids2, asks2).levels()
    assert book.ready


def test_equal_prices_in_different_spellings_are_one_level() -> None:
    book = OrderBook("BTC-USD")
    book.apply_snapshot(BookSnapshot("BTC-USD", ((Decimal("100.0"), Decimal(1)),), (), None, 0))
    book.apply_update(BookUpdate("BTC-USD", (("bid", Decimal("100.00"), Decimal(0)),), 1, 1))
    assert book.depth() == (0, 0)
    book.clear()
    assert not book.ready
    assert book.top(5) == ([], [])
