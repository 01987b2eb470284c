"""Fuzzing with mutated real-shaped messages of both feeds: nothing crashes, every frame is
either parsed or counted invalid, and the books stay consistent."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from quotewatch.book import OrderBook
from quotewatch.events import BookSnapshot, BookUpdate, Event
from quotewatch.ingest.invalid import Invalid
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import FeedSession
from support.coinbase_messages import ADVANCED, EXCHANGE

NASTY = [
    "0.-10000", "NaN", "-1.5", "", "Infinity", "1e999999", "0", "abc", None, True, -7, 0,
    1.5, 10**30, [], {}, [[]], ["buy"], "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59Z",
    "2022-08-04T15:25:05Z", "BTC-USD", "offer", "sell", "SELL", "snapshot", "update", "\u0000",
]  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


def nasty() -> st.SearchStrategy[Any]:
    """A bad value; a fresh copy, since mutations may later change it in place."""
    return st.sampled_from(NASTY).map(copy.deepcopy)


@st.composite
def mutated(draw: st.DrawFn, feed: Feed) -> str:
    """A real-shaped message of ``feed`` with a few random mutations, as frame text."""
    pool = EXCHANGE if feed is Feed.EXCHANGE else ADVANCED
    msg: Any = copy.deepcopy(pool[draw(st.sampled_from(sorted(pool)))])
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(msg)))
        action = draw(st.sampled_from(["replace", "delete", "insert"]))
        if not path:
            if action == "replace":
                msg = draw(nasty())
            continue
        parent: Any = msg
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if action == "replace":
            parent[last] = draw(nasty())
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["type", "channel", "x", "events"]))] = draw(nasty())
        else:
            parent.insert(last, draw(nasty()))
    text = json.dumps(msg)
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


def assert_consistent(book: OrderBook) -> None:
    for side in (book._bids, book._asks):
        assert side.prices == sorted(side.sizes)
        assert all(size > 0 for size in side.sizes.values())
        assert all(price.is_finite() and price > 0 for price in side.prices)
    if book.ready:
        assert not book.is_crossed()


class Mirror:
    """Rebuilds each book from the events the session hands to consumers."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}

    def __call__(self, event: Event, _book: object) -> None:
        if isinstance(event, BookSnapshot):
            self.books[event.product] = {
                "bid": {p: s for p, s in event.bids if s},
                "ask": {p: s for p, s in event.asks if s},
            }
        elif isinstance(event, BookUpdate):
            sides = self.books[event.product]
            for side, price, size in event.changes:
                if size:
                    sides[side][price] = size
                else:
                    sides[side].pop(price, None)


def invalid_total() -> float:
    return sum(
        s.value
        for metric in REGISTRY.collect()
        if metric.name == "coinbase_messages_invalid"
        for s in metric.samples
        if s.name == "coinbase_messages_invalid_total"
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(Feed)), st.data())
def test_mutated_frames_are_parsed_or_counted_and_books_stay_consistent(
    feed: Feed, data: st.DataObject
) -> None:
    mirror = Mirror()
    session = FeedSession(feed, products=["BTC-USD"], consumers=[mirror])
    pool = EXCHANGE if feed is Feed.EXCHANGE else ADVANCED
    snapshot = pool["snapshot" if feed is Feed.EXCHANGE else "l2_snapshot"]
    frames = [json.dumps(snapshot), *data.draw(st.lists(mutated(feed), max_size=25))]
    before = invalid_total()
    invalid = 0
    for frame in frames:
        result = session.handle_frame(frame, 1)
        invalid += isinstance(result, Invalid)
        for book in session.books.values():
            assert_consistent(book)
            if book.ready:
                want = mirror.books[book.product]
                assert book.levels() == (
                    sorted(want["bid"].items(), reverse=True),
                    sorted(want["ask"].items()),
                )
    stats = session.stats
    assert stats.frames == len(frames)
    assert sum(stats.messages.values()) == len(frames)
    assert sum(stats.invalid.values()) == invalid
    assert invalid_total() == before + invalid
