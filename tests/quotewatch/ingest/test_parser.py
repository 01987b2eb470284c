"""Parsing both feeds into typed events; bad messages are typed, counted and skipped."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from quotewatch.events import BookSnapshot, BookUpdate, FeedError, Heartbeat, Subscriptions, Trade
from quotewatch.ingest import fields
from quotewatch.ingest.invalid import BadMessage, Invalid, InvalidReason
from quotewatch.ingest.parser import Feed, Parsed, detect_feed, parse_frame
from support.coinbase_messages import ADVANCED, EXCHANGE

RX = 1_700_000_000_000_000


def parsed(msg: Any, feed: Feed) -> Parsed:
    result = parse_frame(json.dumps(msg), RX, feed)
    assert isinstance(result, Parsed), result
    return result


def invalid_count(reason: str) -> float:
    return REGISTRY.get_sample_value("coinbase_messages_invalid_total", {"reason": reason}) or 0.0


def test_exchange_snapshot_and_update() -> None:
    (snap,) = parsed(EXCHANGE["snapshot"], Feed.EXCHANGE).events
    assert isinstance(snap, BookSnapshot)
    assert snap.bids[0] == (Decimal("22356.27"), Decimal("1.5"))
    assert snap.asks[-1] == (Decimal("22360.00"), Decimal("2"))
    assert (snap.time_us, snap.received_us) == (None, RX)
    (update,) = parsed(EXCHANGE["l2update"], Feed.EXCHANGE).events
    assert isinstance(update, BookUpdate)
    assert update.changes == (
        ("bid", Decimal("22356.27"), Decimal(0)),
        ("ask", Decimal("22356.31"), Decimal("1.0")),
    )
    assert update.time_us == 1_659_626_705_010_758


def test_exchange_match_side_is_the_makers() -> None:
    (trade,) = parsed(EXCHANGE["match"], Feed.EXCHANGE).events
    assert trade == Trade(
        "BTC-USD", 1568268, Decimal("22356.30"), Decimal(450), "buy",
        1_618_677_817_121_358, RX, sequence=201390075,
    )  # fmt: skip
    last = parsed({**EXCHANGE["match"], "type": "last_match"}, Feed.EXCHANGE).events[0]
    assert isinstance(last, Trade)
    assert last.last_match


def test_exchange_heartbeat_subscriptions_error() -> None:
    (beat,) = parsed(EXCHANGE["heartbeat"], Feed.EXCHANGE).events
    assert isinstance(beat, Heartbeat)
    assert (beat.product, beat.last_trade_id) == ("BTC-USD", 1568268)
    (subs,) = parsed(EXCHANGE["subscriptions"], Feed.EXCHANGE).events
    assert subs == Subscriptions((("level2_batch", ("BTC-USD",)), ("heartbeat", ())), RX)
    (err,) = parsed(EXCHANGE["error"], Feed.EXCHANGE).events
    assert err == FeedError("Failed to subscribe", "level2 requires auth", RX)


def test_advanced_level2_offer_is_ask() -> None:
    result = parsed(ADVANCED["l2_snapshot"], Feed.ADVANCED)
    assert result.sequence_num == 0
    (snap,) = result.events
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == ((Decimal("65062.5"), Decimal("0.00583")), (Decimal(65060), Decimal(1)))
    assert snap.asks == ((Decimal("65063.1"), Decimal("2.5")),)
    assert snap.time_us == 1_675_974_770_714_964
    (update,) = parsed(ADVANCED["l2_update"], Feed.ADVANCED).events
    assert isinstance(update, BookUpdate)
    assert update.changes[0] == ("ask", Decimal("65063.1"), Decimal(0))


def test_advanced_trades_heartbeats_subscriptions() -> None:
    (trade,) = parsed(ADVANCED["market_trades"], Feed.ADVANCED).events
    assert isinstance(trade, Trade)
    assert (trade.trade_id, trade.taker_side, trade.last_match) == (1068572091, "buy", False)
    (beat,) = parsed(ADVANCED["heartbeats"], Feed.ADVANCED).events
    assert isinstance(beat, Heartbeat)
    assert (beat.product, beat.counter, beat.time_us) == (None, 41691, 1_687_552_316_121_961)
    (subs,) = parsed(ADVANCED["subscriptions"], Feed.ADVANCED).events
    assert isinstance(subs, Subscriptions)
    assert dict(subs.channels) == {"level2": ("BTC-USD",), "heartbeats": ("heartbeats",)}


def _set(msg: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(msg)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


_DELETE = object()
L2 = EXCHANGE["l2update"]
M = EXCHANGE["match"]
A = ADVANCED["l2_update"]
U = ("events", 0, "updates", 0)

BAD_EXCHANGE = [
    ('{"type":"l2update","product_id":"BTC-USD","changes":[["buy","1', "malformed_json"),
    ("[1, 2]", "not_an_object"),
    (json.dumps({"type": "auction_open"}), "unknown_type"),
    (json.dumps(_set(L2, ("changes",), _DELETE)), "missing_field"),
    (json.dumps(_set(L2, ("changes", 0, 2), "0.-10000")), "bad_size"),
    (json.dumps(_set(L2, ("changes", 0, 2), "NaN")), "bad_size"),
    (json.dumps(_set(L2, ("changes", 0, 2), "-1.5")), "bad_size"),
    (json.dumps(_set(L2, ("changes", 0, 1), "abc")), "bad_price"),
    (json.dumps(_set(L2, ("changes", 0, 1), "0")), "bad_price"),
    (json.dumps(_set(L2, ("changes", 0, 1), "Infinity")), "bad_price"),
    (json.dumps(_set(L2, ("changes", 0, 0), "up")), "bad_side"),
    (json.dumps(_set(L2, ("time",), "0001-01-01T00:00:00.000000Z")), "bad_time"),
    (json.dumps(_set(L2, ("time",), "yesterday")), "bad_time"),
    (json.dumps(_set(M, ("trade_id",), "1568268x")), "bad_id"),
    (json.dumps(_set(M, ("trade_id",), -4)), "bad_id"),
    (json.dumps(_set(M, ("price",), 22356.3)), "bad_price"),
    (json.dumps(_set(M, ("product_id",), None)), "bad_field"),
    (json.dumps(_set(L2, ("changes", 0, 0), [])), "bad_side"),
    (json.dumps(_set(M, ("side",), {"x": 1})), "bad_side"),
    (json.dumps(_set(M, ("trade_id",), "9" * 5000)), "bad_id"),
    (json.dumps({"type": ["l2update"]}), "unknown_type"),
]
BAD_ADVANCED = [
    (json.dumps({"channel": "mystery", "sequence_num": 7, "events": []}), "unknown_type"),
    (json.dumps(_set(A, ("events",), "update")), "bad_field"),
    (json.dumps(_set(A, (*U, "side"), "middle")), "bad_side"),
    (json.dumps(_set(A, (*U, "new_quantity"), "0.-10000")), "bad_size"),
    (json.dumps(_set(A, (*U, "event_time"), "0001-01-01T00:00:00Z")), "bad_time"),
    (json.dumps(_set(A, ("sequence_num",), "x")), "bad_id"),
    (json.dumps(_set(A, ("events", 0, "updates"), _DELETE)), "missing_field"),
    (json.dumps(_set(A, (*U, "price_level"), _DELETE)), "missing_field"),
]


@pytest.mark.parametrize(("frame", "reason"), BAD_EXCHANGE)
def test_bad_exchange_messages_are_typed_and_counted(frame: str, reason: str) -> None:
    before = invalid_count(reason)
    result = parse_frame(frame, RX, Feed.EXCHANGE)
    assert isinstance(result, Invalid)
    assert result.reason == InvalidReason(reason)
    assert invalid_count(reason) == before + 1


@pytest.mark.parametrize(("frame", "reason"), BAD_ADVANCED)
def test_bad_advanced_messages_keep_their_sequence_num(frame: str, reason: str) -> None:
    before = invalid_count(reason)
    result = parse_frame(frame, RX, Feed.ADVANCED)
    assert isinstance(result, Invalid)
    assert result.reason == InvalidReason(reason)
    assert invalid_count(reason) == before + 1
    expected_seq = None if reason == "bad_id" else json.loads(frame)["sequence_num"]
    assert result.sequence_num == expected_seq


def test_detect_feed_from_shapes() -> None:
    assert detect_feed([1, EXCHANGE["subscriptions"], ADVANCED["l2_update"]]) is Feed.EXCHANGE
    assert detect_feed([{"type": "error"}, ADVANCED["heartbeats"]]) is Feed.ADVANCED
    assert detect_feed([{"x": 1}, {"type": []}]) is None


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    st.sampled_from(["%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%f+00:00"]),
)
def test_time_fast_path_agrees_with_the_general_parser(moment: datetime, form: str) -> None:
    text = moment.strftime(form)
    expected = (moment.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
    if ".%f" not in form:
        expected -= moment.microsecond
    assert fields.time_us(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:01.07324xZ",
        "2026-13-01T00:00:01.073249Z",
        "1999-12-31T23:59:59.000000Z",
        "2026-01-01T00:00:01.0732٣9Z",
    ],
)
def test_near_misses_of_the_fast_time_form_are_bad_times(text: str) -> None:
    with pytest.raises(BadMessage) as caught:
        fields.time_us(text)
    assert caught.value.reason is InvalidReason.BAD_TIME
