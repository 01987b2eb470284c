"""A session's checkpoint restores its books and id trackers exactly (hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from quotewatch.events import BookSnapshot, BookUpdate, Trade
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import FeedSession

PRODUCTS = ("BTC-USD", "ETH-USD")
price = st.decimals(min_value=Decimal("1"), max_value=Decimal("99999"), places=2)
size = st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=8)
level = st.tuples(price, size)


@settings(max_examples=100, deadline=None)
@given(
    bids=st.lists(level, max_size=30),
    asks=st.lists(level, max_size=30),
    changes=st.lists(st.tuples(st.sampled_from(["bid", "ask"]), price, size), max_size=30),
    trade_ids=st.lists(st.integers(1, 10**12), max_size=5),
    ready=st.booleans(),
)
def test_restore_gives_back_the_books_and_trackers(bids, asks, changes, trade_ids, ready) -> None:
    session = FeedSession(Feed.EXCHANGE, products=PRODUCTS)
    if ready:
        session._snapshot(BookSnapshot("BTC-USD", tuple(bids), tuple(asks), None, 1))
        session._update(BookUpdate("BTC-USD", tuple(changes), 2, 2))
    for trade_id in sorted(set(trade_ids)):
        session.trades.tracker.observe("ETH-USD", trade_id)

    restored = FeedSession(Feed.EXCHANGE, products=PRODUCTS)
    restored.book("BTC-USD").apply_snapshot(
        BookSnapshot("BTC-USD", ((Decimal(5), Decimal(1)),), (), None, 0)
    )
    restored.restore(session.checkpoint())

    for product in PRODUCTS:
        book, again = session.book(product), restored.book(product)
        assert again.ready == book.ready
        if book.ready:
            assert again.levels() == book.levels()
    assert restored.trades.tracker.last("ETH-USD") == session.trades.tracker.last("ETH-USD")
    assert FeedSession.checkpoint_feed(session.checkpoint()) == (Feed.EXCHANGE, PRODUCTS)


def test_a_restored_tracker_counts_a_repeated_trade_as_a_duplicate() -> None:
    session = FeedSession(Feed.EXCHANGE, products=("BTC-USD",))
    trade = Trade("BTC-USD", 41, Decimal(1), Decimal(1), "buy", 1, 1)
    session._trade(trade)
    restored = FeedSession(Feed.EXCHANGE, products=("BTC-USD",))
    restored.restore(session.checkpoint())
    assert restored._trade(trade) is False  # the `last_match` a resubscribe repeats
    assert restored.stats.products["BTC-USD"].duplicate_trades == 1
