"""A session's state at a log position, as JSON: what replay needs to rebuild the books.

level2_batch sends its snapshot once, at subscribe, so a segment's frames alone cannot rebuild
a book: each segment opens with this checkpoint. It holds the feed, the products followed,
every ready book's levels (prices and sizes as exact decimal strings), and the newest trade id
per product and the connection's newest `sequence_num`, so that replay treats a repeated trade
or frame as the live session did.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from quotewatch.events import BookSnapshot
from quotewatch.ingest.parser import Feed

if TYPE_CHECKING:
    from quotewatch.ingest.session import FeedSession


def capture(session: FeedSession) -> bytes:
    """The checkpoint of `session` now, as JSON bytes."""
    books = {}
    for product, book in session.books.items():
        if book.ready:
            bids, asks = book.levels()
            books[product] = {
                "bids": [[str(p), str(s)] for p, s in bids],
                "asks": [[str(p), str(s)] for p, s in asks],
            }
    tracker = session.trades.tracker
    products = tracker.keys()
    trade_ids = {key: last for key in products if (last := tracker.last(key)) is not None}
    state: dict[str, Any] = {
        "feed": str(session.feed),
        "products": list(session.products),
        "books": books,
        "trade_ids": trade_ids,
        "sequence_num": session.sequence.tracker.last(session.sequence.label),
    }
    return orjson.dumps(state)


def feed_of(checkpoint: bytes) -> tuple[Feed, tuple[str, ...]]:
    """The feed and products a checkpoint was taken from."""
    state = orjson.loads(checkpoint)
    return Feed(state["feed"]), tuple(state["products"])


def restore(session: FeedSession, checkpoint: bytes) -> None:
    """Set `session`'s books and id trackers to the checkpoint's (other books are emptied)."""
    state = orjson.loads(checkpoint)
    for book in session.books.values():
        book.clear()
    for product, sides in state["books"].items():
        snapshot = BookSnapshot(product, _levels(sides["bids"]), _levels(sides["asks"]), None, 0)
        session.book(product).apply_snapshot(snapshot)
    tracker = session.trades.tracker
    for product, last in state["trade_ids"].items():
        tracker.seed(product, int(last))
    sequence = state["sequence_num"]
    if sequence is not None:
        session.sequence.tracker.seed(session.sequence.label, int(sequence))


def _levels(pairs: list[list[str]]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(p), Decimal(s)) for p, s in pairs)
