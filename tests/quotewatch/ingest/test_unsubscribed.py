"""Frames for products that were not subscribed are counted and dropped, creating no state
(issue 18: 120k bogus products took RSS from 38 to 186 MB and made 10k metric samples)."""

from __future__ import annotations

import copy
import json

from prometheus_client import REGISTRY
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import FeedSession
from support.coinbase_messages import EXCHANGE


def invalid(reason: str) -> float:
    return REGISTRY.get_sample_value("coinbase_messages_invalid_total", {"reason": reason}) or 0.0


def test_unsubscribed_products_create_no_books_or_stats() -> None:
    seen: list[object] = []
    session = FeedSession(
        Feed.EXCHANGE,
        products=["BTC-USD"],
        consumers=[lambda e, _b: seen.append(e)],
        drop_unsubscribed=True,
    )
    before = invalid("unsubscribed_product")
    for n in range(1_000):
        for kind in ("snapshot", "match", "l2update"):
            msg = copy.deepcopy(EXCHANGE[kind])
            msg["product_id"] = f"BOGUS{n}-USD"
            if kind == "match":
                msg["trade_id"] = n
            session.handle_frame(json.dumps(msg), 1)
    session.handle_frame(json.dumps(EXCHANGE["snapshot"]), 1)
    assert set(session.books) == {"BTC-USD"}
    assert set(session.stats.products) == {"BTC-USD"}
    assert list(session.trades.tracker.keys()) == []
    assert session.stats.invalid == {"unsubscribed_product": 3_000}
    assert invalid("unsubscribed_product") - before == 3_000
    assert len(seen) == 1  # only the subscribed snapshot reached the consumers


def test_a_replay_follows_every_product() -> None:
    session = FeedSession(Feed.EXCHANGE, products=["BTC-USD"])
    msg = copy.deepcopy(EXCHANGE["snapshot"])
    msg["product_id"] = "ETH-USD"
    session.handle_frame(json.dumps(msg), 1)
    assert "ETH-USD" in session.books
