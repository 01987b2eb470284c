"""Coinbase Exchange messages (``ws-feed.exchange.coinbase.com``) -> typed events.

Each reader takes the decoded message and the frame's receive time and returns the events it
carries, or raises `BadMessage`. A message is taken whole or not at all: one bad level or
change rejects the message, so a half-applied update can never corrupt a book.
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

_BOOK_SIDES: dict[Any, BookSide] = {"buy": "bid", "sell": "ask"}
# `side` on a match is the maker's; the taker did the opposite.
_TAKER_SIDES: dict[Any, TakerSide] = {"buy": "sell", "sell": "buy"}


def _levels(value: Any, name: str) -> tuple[Level, ...]:
    levels = []
    for level in fields.items(value, name):
        if not isinstance(level, list) or len(level) < 2:
            raise BadMessage(InvalidReason.BAD_FIELD, f"{name} level {brief(level)} is not [p, s]")
        levels.append((fields.price(level[0]), fields.size(level[1])))
    return tuple(levels)


def snapshot(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``snapshot``: the whole book (it carries no time)."""
    product = fields.text(msg, "product_id")
    bids = _levels(fields.require(msg, "bids"), "bids")
    asks = _levels(fields.require(msg, "asks"), "asks")
    time_us = fields.time_us(msg["time"]) if "time" in msg else None
    return (BookSnapshot(product, bids, asks, time_us, received_us),)


def l2update(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``l2update``: ``[side, price, new total size]`` changes."""
    product = fields.text(msg, "product_id")
    changes: list[Change] = []
    price, size = fields.price, fields.size
    for change in fields.items(fields.require(msg, "changes"), "changes"):
        if type(change) is not list or len(change) != 3:
            raise BadMessage(InvalidReason.BAD_FIELD, f"change {brief(change)} is not [side, p, s]")
        side_text, price_text, size_text = change
        side = _BOOK_SIDES.get(side_text) if type(side_text) is str else None
        if side is None:
            raise BadMessage(InvalidReason.BAD_SIDE, f"change side {brief(side_text)}")
        changes.append((side, price(price_text), size(size_text)))
    time_us = fields.time_us(fields.require(msg, "time"))
    return (BookUpdate(product, tuple(changes), time_us, received_us),)


def match(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``match`` / ``last_match``: one trade; ``side`` is the maker's."""
    maker_side = fields.require(msg, "side")
    taker_side = _TAKER_SIDES.get(maker_side) if type(maker_side) is str else None
    if taker_side is None:
        raise BadMessage(InvalidReason.BAD_SIDE, f"side {brief(maker_side)}")
    sequence = msg.get("sequence")
    trade = Trade(
        product=fields.text(msg, "product_id"),
        trade_id=fields.integer(fields.require(msg, "trade_id"), "trade_id"),
        price=fields.price(fields.require(msg, "price")),
        size=fields.trade_size(fields.require(msg, "size")),
        taker_side=taker_side,
        time_us=fields.time_us(fields.require(msg, "time")),
        received_us=received_us,
        sequence=None if sequence is None else fields.integer(sequence, "sequence"),
        last_match=msg["type"] == "last_match",
    )
    return (trade,)


def heartbeat(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``heartbeat``: once a second per product, with the product's ``last_trade_id``."""
    return (
        Heartbeat(
            product=fields.text(msg, "product_id"),
            time_us=fields.time_us(fields.require(msg, "time")),
            received_us=received_us,
            last_trade_id=fields.integer(fields.require(msg, "last_trade_id"), "last_trade_id"),
        ),
    )


def subscriptions(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``subscriptions``: the ack; channels are names or ``{name, product_ids}`` objects."""
    channels: list[tuple[str, tuple[str, ...]]] = []
    for channel in fields.items(fields.require(msg, "channels"), "channels"):
        if isinstance(channel, str):
            channels.append((channel, ()))
        elif isinstance(channel, dict):
            products = fields.strings(channel.get("product_ids", []), "product_ids")
            channels.append((fields.text(channel, "name"), products))
        else:
            raise BadMessage(InvalidReason.BAD_FIELD, f"channel {brief(channel)}")
    return (Subscriptions(tuple(channels), received_us),)


def error(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """``error``: a refused subscription, a rate limit, a slow-consumer notice."""
    message = fields.loose_text(msg.get("message"))
    return (FeedError(message, fields.loose_text(msg.get("reason")), received_us),)


def ignored(msg: dict[str, Any], received_us: int) -> tuple[Event, ...]:
    """Known messages quotewatch does not use (e.g. ``ticker``)."""
    return ()


READERS: dict[str, Callable[[dict[str, Any], int], tuple[Event, ...]]] = {
    "snapshot": snapshot,
    "l2update": l2update,
    "match": match,
    "last_match": match,
    "heartbeat": heartbeat,
    "subscriptions": subscriptions,
    "error": error,
    "ticker": ignored,
}
