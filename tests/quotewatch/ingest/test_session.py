"""FeedSession: crossed books, heartbeat tail checks, trade ids and the gauges, with metrics."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY
from quotewatch.events import BookUpdate, Event, Trade
from quotewatch.ingest.client import RECONNECT_REASONS
from quotewatch.ingest.gaps import GAP_LOG_BURST, GAP_LOG_INTERVAL, GapLog
from quotewatch.ingest.invalid import InvalidReason
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import REPORT_EVERY_US, RESYNC_REASONS, FeedSession, Resync
from quotewatch.ingest.summary import feed_summary
from qw_metrics import Gap
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


def test_every_counter_a_panel_reads_has_its_series_at_zero_before_any_event() -> None:
    def exists(name: str, **labels: str) -> bool:
        return REGISTRY.get_sample_value(name, labels) is not None

    FeedSession(Feed.EXCHANGE, products=["AVAX-USD", "LINK-USD"])
    FeedSession(Feed.ADVANCED, products=["XRP-USD"])
    for product in ("AVAX-USD", "LINK-USD"):
        for source in ("trade_id", "heartbeat"):
            assert sample("coinbase_sequence_gaps_total", product=product, source=source) == 0
            assert exists("coinbase_messages_missed_total", product=product, source=source)
        assert exists("orderbook_crossed_total", product=product)
    assert exists("coinbase_sequence_gaps_total", product="XRP-USD", source="sequence_num")
    assert not exists("coinbase_sequence_gaps_total", product="XRP-USD", source="trade_id")
    assert all(exists("coinbase_messages_invalid_total", reason=r) for r in InvalidReason)
    assert all(exists("coinbase_resyncs_total", reason=r) for r in RESYNC_REASONS)
    assert all(
        exists("websocket_reconnections_total", feed=feed, reason=reason)
        for feed in Feed
        for reason in RECONNECT_REASONS
    )


def test_each_gap_logs_one_warning_with_product_source_ids_and_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = FeedSession(Feed.EXCHANGE, products=["DOGE-USD"])
    with caplog.at_level(logging.WARNING, logger="quotewatch.ingest.gaps"):
        for i, trade_id in enumerate((100, 101, 104, 105)):
            session.handle_frame(match("DOGE-USD", trade_id), i + 1)
        session.handle_frame(heartbeat("DOGE-USD", 105), 10)
        session.handle_frame(heartbeat("DOGE-USD", 108), 11)
        session.handle_frame(heartbeat("DOGE-USD", 108), 12)  # proves 106..108 lost
    gaps = [r for r in caplog.records if r.name == "quotewatch.ingest.gaps"]
    assert {r.levelno for r in gaps} == {logging.WARNING}
    assert [r.getMessage() for r in gaps] == [
        "gap: product=DOGE-USD source=trade_id missing ids 102 to 103 (2 missed)",
        "gap: product=DOGE-USD source=heartbeat missing ids 106 to 108 (3 missed)",
    ]


def test_gap_warnings_are_rate_limited_per_product_and_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = GapLog(clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="quotewatch.ingest.gaps"):
        for i in range(GAP_LOG_BURST + 3):
            log.gap("BTC-USD", "trade_id", Gap(10 * i, 10 * i + 1))
        log.gap("ETH-USD", "trade_id", Gap(7, 7))  # its own budget
        now[0] = GAP_LOG_INTERVAL
        log.gap("BTC-USD", "trade_id", Gap(500, 500))
    lines = [r.getMessage() for r in caplog.records]
    btc = [line for line in lines if "product=BTC-USD" in line]
    assert len(btc) == GAP_LOG_BURST + 1
    assert "product=ETH-USD source=trade_id missing ids 7 to 7 (1 missed)" in lines[-3]
    assert lines[-2] == "3 more gap warnings for BTC-USD trade_id suppressed"
    assert lines[-1].endswith("missing ids 500 to 500 (1 missed)")
