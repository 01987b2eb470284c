"""Typed feed events: what the parsers produce from Coinbase messages of either feed.

Prices and sizes are exact `Decimal`s. Exchange times are ``time_us`` (microseconds since the
epoch, UTC); ``received_us`` is the wall-clock time the frame carrying the event was received
(``time.time_ns() // 1000``; in a replay, the recorded receive time). Sides are normalised: book
sides are ``"bid"`` / ``"ask"``; trades carry the *taker* side ``"buy"`` / ``"sell"`` (Coinbase's
``side`` is the maker's).

Events are immutable NamedTuples: several are built per message, and a NamedTuple is built in a
quarter of the time of a frozen dataclass.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, NamedTuple

BookSide = Literal["bid", "ask"]
TakerSide = Literal["buy", "sell"]
Level = tuple[Decimal, Decimal]
Change = tuple[BookSide, Decimal, Decimal]


class BookSnapshot(NamedTuple):
    """The whole book of one product; it replaces whatever book there was."""

    product: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    time_us: int | None
    received_us: int


class BookUpdate(NamedTuple):
    """Level changes of one product; each size is the new total at that price (0 removes)."""

    product: str
    changes: tuple[Change, ...]
    time_us: int
    received_us: int


class Trade(NamedTuple):
    """One trade. ``sequence`` is the Exchange match sequence (information only, not contiguous);
    ``last_match`` marks older trades sent once on subscribing (Exchange ``last_match``,
    Advanced Trade ``market_trades`` snapshots)."""

    product: str
    trade_id: int
    price: Decimal
    size: Decimal
    taker_side: TakerSide
    time_us: int
    received_us: int
    sequence: int | None = None
    last_match: bool = False
    source: str = "ws"  # "rest" when backfilled from the REST API


class Heartbeat(NamedTuple):
    """A liveness beat. Exchange: per product, with ``last_trade_id``. Advanced Trade: per
    connection (``product`` is None), with the server's ``counter``."""

    product: str | None
    time_us: int
    received_us: int
    last_trade_id: int | None = None
    counter: int | None = None


class Subscriptions(NamedTuple):
    """The server's subscription ack: channel name -> product ids."""

    channels: tuple[tuple[str, tuple[str, ...]], ...]
    received_us: int


class FeedError(NamedTuple):
    """An ``error`` message from the server (e.g. a refused subscription)."""

    message: str
    reason: str
    received_us: int


Event = BookSnapshot | BookUpdate | Trade | Heartbeat | Subscriptions | FeedError
