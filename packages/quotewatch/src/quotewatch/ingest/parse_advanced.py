"""Coinbase Advanced Trade messages (``advanced-trade-ws.coinbase.com``) -> typed events.

Every frame is an envelope ``{"channel", "timestamp", "sequence_num", "events": [...]}``; the
readers here turn its ``events`` into typed events or raise `BadMessage`, rejecting the whole
frame on any bad item so a book never sees half a frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quotewatch.events import (
    BookSide,
    BookSnapshot,
    BookUpdate,
    Change,
    Event,
    FeedError,
    Heartbeat,
    Level,
    Subscriptions,
    TakerSide,
    Trade,
)
from quotewatch.ingest import fields
from quotewatch.ingest.invalid import BadMessage, InvalidReason, brief

# The ask side is spelled "offer" on this feed.
_BOOK_SIDES: dict[Any, BookSide] = {"bid": "bid", "offer": "ask"}
# `side` on a trade is the maker's, in upper case; the taker did the opposite.
_TAKER_SIDES: dict[Any, TakerSide] = {"BUY": "sell", "SELL": "buy"}


def _events(msg: dict[str, Any]) -> list[Any]:
    events = fields.items(fields.require(msg, "events"), "events")
    for event in events:
        if not isinstance(event, dict):
            raise BadMessage(InvalidReason.BAD_FIELD, f"event {brief(event)} is not an object")
    return events


def l2_data(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``l2_data``: snapshot and update events of ``{side, event_time, price_level,
    new_quantity}`` updates."""
    out: list[Event] = []
    for event in _events(msg):
        kind = fields.require(event, "type")
        if kind not in ("snapshot", "update"):
            raise BadMessage(InvalidReason.UNKNOWN_TYPE, f"l2_data event type {brief(kind)}")
        is_update = kind == "update"
        product = fields.text(event, "product_id")
        updates = fields.items(fields.require(event, "updates"), "updates")
        changes: list[Change] = []
        time_us = None
        price, size, parse_time = fields.price, fields.size, fields.time_us
        time_text = None
        for update in updates:
            if type(update) is not dict:
                raise BadMessage(
                    InvalidReason.BAD_FIELD, f"update {brief(update)} is not an object"
                )
            # A missing key raises KeyError, which the parser reports as a missing field.
            side_text = update["side"]
            side = _BOOK_SIDES.get(side_text) if type(side_text) is str else None
            if side is None:
                raise BadMessage(InvalidReason.BAD_SIDE, f"update side {brief(side_text)}")
            changes.append((side, price(update["price_level"]), size(update["new_quantity"])))
            # Snapshot levels carry no meaningful event time (the envelope stamps the snapshot);
            # the updates of one frame mostly share theirs, so parse each distinct one once.
            if is_update and update["event_time"] != time_text:
                time_text = update["event_time"]
                time_us = parse_time(time_text)
        if not is_update:
            bids: tuple[Level, ...] = tuple((p, s) for side, p, s in changes if side == "bid")
            asks: tuple[Level, ...] = tuple((p, s) for side, p, s in changes if side == "ask")
            stamp = fields.time_us(msg["timestamp"]) if "timestamp" in msg else time_us
            out.append(BookSnapshot(product, bids, asks, stamp, received_us))
        elif time_us is not None:
            out.append(BookUpdate(product, tuple(changes), time_us, received_us))
    return tuple(out)


def market_trades(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``market_trades``: batches of trades; a ``snapshot`` event holds older trades."""
    out: list[Event] = []
    for event in _events(msg):
        kind = fields.require(event, "type")
        if kind not in ("snapshot", "update"):
            raise BadMessage(InvalidReason.UNKNOWN_TYPE, f"market_trades event type {brief(kind)}")
        for trade in fields.items(fields.require(event, "trades"), "trades"):
            if not isinstance(trade, dict):
                raise BadMessage(InvalidReason.BAD_FIELD, f"trade {brief(trade)} is not an object")
            maker_side = fields.require(trade, "side")
            taker_side = _TAKER_SIDES.get(maker_side) if type(maker_side) is str else None
            if taker_side is None:
                raise BadMessage(InvalidReason.BAD_SIDE, f"trade side {brief(maker_side)}")
            out.append(
                Trade(
                    product=fields.text(trade, "product_id"),
                    trade_id=fields.integer(fields.require(trade, "trade_id"), "trade_id"),
                    price=fields.price(fields.require(trade, "price")),
                    size=fields.trade_size(fields.require(trade, "size")),
                    taker_side=taker_side,
                    time_us=fields.time_us(fields.require(trade, "time")),
                    received_us=received_us,
                    last_match=kind == "snapshot",
                )
            )
    return tuple(out)


def heartbeats(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``heartbeats``: one per second per connection, with the server's uptime counter."""
    out: list[Event] = []
    for event in _events(msg):
        counter = fields.integer(fields.require(event, "heartbeat_counter"), "heartbeat_counter")
        time_us = fields.time_us(fields.require(event, "current_time"))
        out.append(Heartbeat(None, time_us, received_us, counter=counter))
    return tuple(out)


def subscriptions(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``subscriptions``: the ack, ``{"subscriptions": {channel: [product, ...]}}``."""
    channels: list[tuple[str, tuple[str, ...]]] = []
    for event in _events(msg):
        subs = fields.require(event, "subscriptions")
        if not isinstance(subs, dict):
            raise BadMessage(InvalidReason.BAD_FIELD, "subscriptions is not an object")
        for name, products in subs.items():
            channels.append((str(name), fields.strings(products, str(name))))
    return (Subscriptions(tuple(channels), received_us),)


def ignored(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """Known channels quotewatch does not use."""
    return ()


def error(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``{"type": "error", "message": ...}``."""
    message = fields.loose_text(msg.get("message"))
    return (FeedError(message, fields.loose_text(msg.get("reason")), received_us),)


READERS: dict[str, Callable[[dict[str, Any], int], tuple[Event, ...]]] = {
    "l2_data": l2_data,
    "market_trades": market_trades,
    "heartbeats": heartbeats,
    "subscriptions": subscriptions,
    "ticker": ignored,
    "ticker_batch": ignored,
    "candles": ignored,
    "status": ignored,
}
