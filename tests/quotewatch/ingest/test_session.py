"""FeedSession: crossed books, heartbeat tail checks, trade ids and the gauges, with metrics."""

from __future__ import annotations

import copy
import json
from typing import Any

from prometheus_client import REGISTRY
from quotewatch.events import BookUpdate, Event, Trade
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import REPORT_EVERY_US, FeedSession, Resync
from quotewatch.ingest.summary import feed_summary
from support.coinbase_messages import ADVANCED, EXCHANGE


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def match(product: str, trade_id: int) -> dict[str, Any]:
    return {**EXCHANGE["match"], "product_id": product, "trade_id": trade_id}


def heartbeat(product: str, last_trade_id: int) -> dict[str, Any]:
    return {**EXCHANGE["heartbeat"], "product_id": product, "last_trade_id": last_trade_id}


def test_a_crossed_book_is_counted_dropped_and_resubscribed() -> None:
    crossed = sample("orderbook_crossed_total", product="BTC-USD")
    resyncs = sample("coinbase_resyncs_total", reason="crossed_book")
    seen: list[Event] = []
    session = FeedSession(
        Feed.EXCHANGE, products=["BTC-USD"], consumers=[lambda event, _book: seen.append(event)]
    )
    session.handle_frame(EXCHANGE["snapshot"], 1)
    # A bid above the best ask (22356.30) crosses the book.
    update = {**EXCHANGE["l2update"], "changes": [["buy", "22357.00", "1"]]}
    session.handle_frame(update, 2)
    assert sample("orderbook_crossed_total", product="BTC-USD") == crossed + 1
    assert sample("coinbase_resyncs_total", reason="crossed_book") == resyncs + 1
    assert session.pending_resyncs == [Resync("crossed_book", ("BTC-USD",))]
    assert not session.books["BTC-USD"].ready
    assert not any(isinstance(e, BookUpdate) for e in seen)
    # Updates wait for the fresh snapshot; the snapshot replaces the book.
    session.handle_frame(EXCHANGE["l2update"], 3)
    assert session.stats.products["BTC-USD"].stale_updates == 1
    session.handle_frame(EXCHANGE["snapshot"], 4)
    session.handle_frame(EXCHANGE["l2update"], 5)
    assert session.books["BTC-USD"].ready
    assert session.books["BTC-USD"].best_bid() is not None
    summary = feed_summary(session, 1.0)
    assert summary["products"]["BTC-USD"]["crossed_books"] == 1
    assert summary["products"]["BTC-USD"]["resyncs"] == 1
    assert summary["products"]["BTC-USD"]["book_updates"] == 2


def test_trade_ids_heartbeats_and_gauges() -> None:
    product = "SOL-USD"  # a product of its own, so the metric values start at zero
    session = FeedSession(Feed.EXCHANGE, products=[product])
    session.handle_frame({**match(product, 10), "type": "last_match"}, 1)
    for trade_id in (11, 13, 14, 14):  # 12 lost, 14 duplicated
        session.handle_frame(match(product, trade_id), 2)
    session.handle_frame(heartbeat(product, 17), 3)  # trades 15-17 may still be in flight
    assert sample("coinbase_sequence_gaps_total", product=product, source="heartbeat") == 0
    session.handle_frame(heartbeat(product, 18), 4)  # ...but not any more: 15-17 are lost
    session.handle_frame(match(product, 18), 5)  # already accounted for by the heartbeat
    trade_id = {"product": product, "source": "trade_id"}
    beat = {"product": product, "source": "heartbeat"}
    assert REGISTRY.get_sample_value("coinbase_sequence_gaps_total", trade_id) == 1
    assert REGISTRY.get_sample_value("coinbase_messages_missed_total", trade_id) == 1
    assert REGISTRY.get_sample_value("coinbase_sequence_gaps_total", beat) == 1
    assert REGISTRY.get_sample_value("coinbase_messages_missed_total", beat) == 3
    # The gauges are set when the session reports (every 0.25 s of receive time, and at the end).
    assert sample("coinbase_last_trade_id", product=product) == 0  # all within 0.25 s
    session.report_counts()
    assert sample("coinbase_last_trade_id", product=product) == 18
    assert sample("coinbase_match_sequence", product=product) == 201390075
    stats = session.trades.tracker.stats(product)
    assert (stats.duplicates, stats.gaps) == (1, 1)
    summary = feed_summary(session, 2.0)["products"][product]
    assert (summary["trade_gaps"], summary["trades_missed"]) == (2, 4)
    assert (summary["heartbeat_gaps"], summary["heartbeat_missed"]) == (1, 3)
    # 10, 11, 13, 14, 18 reach the consumers; the repeated 14 does not.
    assert (summary["trades"], summary["duplicate_trades"]) == (5, 1)


def _advanced(name: str, seq: int) -> dict[str, Any]:
    return {**copy.deepcopy(ADVANCED[name]), "sequence_num": seq}


def test_advanced_sequence_gap_resubscribes_every_ready_book_at_once() -> None:
    seq_labels = {"product": "BTC-USD", "source": "sequence_num"}
    gaps = sample("coinbase_sequence_gaps_total", **seq_labels)
    missed = sample("coinbase_messages_missed_total", **seq_labels)
    resyncs = sample("coinbase_resyncs_total", reason="sequence_gap")
    session = FeedSession(Feed.ADVANCED, products=["BTC-USD"])
    # the snapshot before the subscriptions ack, numbered in that order, as the server sends it
    for seq, name in enumerate(["l2_snapshot", "subscriptions", "l2_update"]):
        session.handle_frame(_advanced(name, seq), 1)
    assert session.books["BTC-USD"].ready
    assert session.pending_resyncs == []
    # Frame 3 is lost: the very next frame reveals the gap, and the book resyncs now.
    session.handle_frame(_advanced("heartbeats", 4), 2)
    assert session.pending_resyncs == [Resync("sequence_gap", ("BTC-USD",))]
    assert not session.books["BTC-USD"].ready
    assert sample("coinbase_sequence_gaps_total", **seq_labels) == gaps + 1
    assert sample("coinbase_messages_missed_total", **seq_labels) == missed + 1
    assert sample("coinbase_resyncs_total", reason="sequence_gap") == resyncs + 1
    # An old number is late (it was missing) or a duplicate: neither is another gap.
    session.handle_frame(_advanced("heartbeats", 3), 3)
    session.handle_frame(_advanced("heartbeats", 4), 3)
    session.handle_frame(_advanced("heartbeats", 5), 3)
    stats = session.sequence.tracker.stats("BTC-USD")
    assert (stats.gaps, stats.missed, stats.late, stats.duplicates) == (1, 1, 1, 1)
    assert len(session.pending_resyncs) == 1
    assert sample("coinbase_sequence_gaps_total", **seq_labels) == gaps + 1
    assert sample("coinbase_resyncs_total", reason="sequence_gap") == resyncs + 1
    assert feed_summary(session, 1.0)["sequence"] == {
        "gaps": 1,
        "missed": 1,
        "duplicate_frames": 1,
    }


def test_consumers_get_events_with_receive_times() -> None:
    got: list[Event] = []
    session = FeedSession(
        Feed.EXCHANGE, products=["BTC-USD"], consumers=[lambda event, _book: got.append(event)]
    )
    session.handle_frame(EXCHANGE["snapshot"], 111)
    session.handle_frame(EXCHANGE["match"], 222)
    assert [e.received_us for e in got] == [111, 222]
    assert isinstance(got[1], Trade)


def test_frames_are_counted_by_type_at_most_every_quarter_second_of_receive_time() -> None:
    def received() -> float:
        return sample("coinbase_messages_received_total", type="l2update")

    session = FeedSession(Feed.EXCHANGE, products=("BTC-USD",))
    rx = 1_700_000_000_000_000
    before = received()
    session.handle_frame(json.dumps(EXCHANGE["l2update"]), rx)  # the first report is at once
    assert received() == before + 1
    session.handle_frame(EXCHANGE["l2update"], rx + REPORT_EVERY_US - 1)
    assert received() == before + 1  # not yet due
    session.handle_frame(EXCHANGE["l2update"], rx + REPORT_EVERY_US)
    assert received() == before + 3
    session.handle_frame(EXCHANGE["l2update"], rx + REPORT_EVERY_US + 1)
    session.report_counts()  # what the runner and a replay do at the end
    assert received() == before + 4
    assert session.stats.messages["l2update"] == 4
