"""`FeedSession`: frame -> parse -> order book -> gap trackers -> consumers, for one feed.

The same session drives a live connection (`quotewatch.ingest.client.FeedClient`) and a
replay (`quotewatch.ingest.replay`), so both paths behave identically. Per frame:

1. taps (e.g. the recorder) see the raw frame, its receive time and the parse result;
2. `parse_frame` turns it into typed events or an `Invalid` (counted, logged, skipped);
3. Advanced Trade ``sequence_num`` is checked; a gap (a jump: frames arrive in order) makes
   every book stale and asks for a level2 resubscription at once;
4. each event is applied: snapshots replace a book, updates change it (skipped while the book
   is stale); a book left crossed is counted, emptied (stale) and asks for a resubscription,
   and its event is not passed on; trades and heartbeats go through the gap trackers;
5. consumers get every applied event, in order, synchronously, with the book it just updated
   (None for events that update no book): `consumer(event, book)`. They run on the feed loop,
   so they must be quick and must never block or await I/O (hand rows to a queue instead).

Frames are counted by type in `stats.messages`, and the increments are added to
``coinbase_messages_received_total{type}`` by `report_counts` at most every 0.25 s of receive
time (and at the end of a run): a decorated call per frame cost more than parsing a small one.
The newest-trade gauges are set at the same time.

Resubscriptions are queued in `pending_resyncs`; the live client sends them, a replay only
counts them (the snapshot that followed in the recording then refreshes the book).

`log_frames(frame_log)` makes every frame and connection start go to a frame log
(`quotewatch.wal`) first, each whole frame handled holding the log's lock (see there why).
Each log segment opens with `checkpoint()`, the state `restore` rebuilds: level2_batch sends
its snapshot only once, at subscribe, so frames alone cannot rebuild a book.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

import orjson
from qw_metrics import Gap, SequenceKind, counted

from quotewatch.book import OrderBook
from quotewatch.events import BookSnapshot, BookUpdate, Event, Heartbeat, Trade
from quotewatch.ingest.gaps import DEFAULT_MAX_ID_JUMP, SequenceNumGaps, TradeGaps, TradeSeen
from quotewatch.ingest.invalid import Invalid, InvalidReason, RateLimitedLog
from quotewatch.ingest.parser import Feed, ParseResult, parse_frame
from quotewatch.metrics import (
    CROSSED_BOOKS,
    MESSAGES_INVALID,
    MESSAGES_MISSED,
    MESSAGES_RECEIVED,
    RESYNCS,
    SEQUENCE_GAPS,
    TRADES_BACKFILLED,
    start_at_zero,
    starts_at_zero,
)

Frame = str | bytes | dict[str, Any]
# Called with each applied event and the book it updated (None if none); the result is ignored.
Consumer = Callable[[Event, OrderBook | None], object]
FrameTap = Callable[[Frame, int, ParseResult], None]

_log = RateLimitedLog(logging.getLogger(__name__), suppressed="more out-of-range ids")
REPORT_EVERY_US = 250_000  # receive time between two reports of the frame counts
RESYNC_REASONS = ("sequence_gap", "crossed_book")
start_at_zero((RESYNCS,), ({"reason": reason} for reason in RESYNC_REASONS))


class FrameJournal(Protocol):
    """Where a session logs its frames first (`quotewatch.wal.FrameLog`)."""

    lock: threading.Lock  # held for each whole frame
    roll_due: bool  # the next entry opens a segment, with `roll(checkpoint)` first

    def roll(self, checkpoint: bytes) -> None: ...

    def append(self, frame: object, received_us: int) -> None: ...

    def connected(self, received_us: int) -> None: ...


class FrameCount(NamedTuple):
    """Frames of one message type received since the previous report."""

    type: str
    frames: int


@dataclass(frozen=True, slots=True)
class Resync:
    """A request to resubscribe level2 for ``products`` (to get fresh snapshots)."""

    reason: str
    products: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KnownSeries:
    """The label sets of the session's per-product counters, known before any event."""

    gaps: tuple[dict[str, str], ...]  # product and source of the gap trackers
    books: tuple[dict[str, str], ...]  # product of each book


@dataclass(slots=True)
class ProductStats:
    """What one product's stream did (summary material, not metrics)."""

    trades: int = 0
    book_updates: int = 0
    snapshots: int = 0
    stale_updates: int = 0
    crossed_books: int = 0
    resyncs: int = 0
    duplicate_trades: int = 0
    backfilled: int = 0


@dataclass(slots=True)
class SessionStats:
    """Frame counts by type and invalid reason, and per-product counts."""

    frames: int = 0
    duplicate_frames: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    products: dict[str, ProductStats] = field(default_factory=dict)


class FeedSession:
    """Parses frames of one feed and keeps its books and gap trackers; see the module doc."""

    def __init__(
        self,
        feed: Feed,
        *,
        products: Sequence[str] = (),
        consumers: Sequence[Consumer] = (),
        taps: Sequence[FrameTap] = (),
        connection_label: str | None = None,
        max_id_jump: int = DEFAULT_MAX_ID_JUMP,
        drop_unsubscribed: bool = False,
    ) -> None:
        self.feed = feed
        # Live: frames for products not subscribed would create books and stats without bound
        # (120k bogus products took RSS from 38 to 186 MB); they are counted and dropped.
        self._follow = frozenset(products) if drop_unsubscribed and products else None
        self.products = tuple(products)
        self.consumers: list[Consumer] = list(consumers)
        self.taps: list[FrameTap] = list(taps)
        self.books: dict[str, OrderBook] = {p: OrderBook(p) for p in self.products}
        self.stats = SessionStats()
        self.trades = TradeGaps(max_jump=max_id_jump, on_reject=self._id_out_of_range)
        self.sequence = SequenceNumGaps(
            connection_label or ",".join(self.products) or "*",
            on_gap=self._sequence_gap,
            max_jump=max_id_jump,
            on_reject=self._id_out_of_range,
        )
        # Trades whose trade_id is a suspect: passed on once confirmed, dropped if rejected.
        self._held: dict[str, Trade] = {}
        self.pending_resyncs: list[Resync] = []
        self.frame_log: FrameJournal | None = None
        self._reported: Counter[str] = Counter()
        self._report_due_us = 0
        # What applying an event gives: the book it updated, True to pass it on without a book,
        # or False to drop it.
        self._apply: Mapping[type, Callable[[Any], OrderBook | bool]] = {
            BookUpdate: self._update,
            BookSnapshot: self._snapshot,
            Trade: self._trade,
            Heartbeat: self._heartbeat,
        }
        self._known_series()

    def __repr__(self) -> str:
        return f"FeedSession({self.feed}, products={list(self.books)})"

    @starts_at_zero(CROSSED_BOOKS, labels_from_result=lambda known: known.books)
    @starts_at_zero(SEQUENCE_GAPS, MESSAGES_MISSED, labels_from_result=lambda known: known.gaps)
    def _known_series(self) -> KnownSeries:
        """The gap sources and books of this feed and its products, so that their counters
        read 0 before the first gap or crossed book instead of having no series."""
        if self.feed is Feed.EXCHANGE:
            gaps = tuple(
                {"product": product, "source": source}
                for product in self.products
                for source in ("trade_id", "heartbeat")
            )
        else:
            gaps = ({"product": self.sequence.label, "source": "sequence_num"},)
        return KnownSeries(gaps, tuple({"product": product} for product in self.products))

    def book(self, product: str) -> OrderBook:
        """The book of ``product`` (created empty and not ready if unseen)."""
        book = self.books.get(product)
        if book is None:
            book = self.books[product] = OrderBook(product)
        return book

    def log_frames(self, frame_log: FrameJournal | None) -> None:
        """Append every frame, and each connection start, to `frame_log` before handling it
        (None: stop logging)."""
        self.frame_log = frame_log
        if frame_log is None:
            vars(self).pop("handle_frame", None)
        else:
            # An instance attribute: sessions without a log pay nothing per frame.
            self.handle_frame = self._logged_frame  # type: ignore[method-assign]

    def checkpoint(self) -> bytes:
        """The session's state as JSON: feed, products, every ready book's levels (exact
        decimal strings), the newest trade id per product and the newest `sequence_num`, so a
        replay from here treats a repeated trade or frame as this session did."""
        books = {}
        for product, book in self.books.items():
            if book.ready:
                bids, asks = book.levels()
                books[product] = {
                    "bids": [[str(p), str(s)] for p, s in bids],
                    "asks": [[str(p), str(s)] for p, s in asks],
                }
        tracker = self.trades.tracker
        products = tracker.keys()
        state = {
            "feed": str(self.feed),
            "products": list(self.products),
            "books": books,
            "trade_ids": {k: last for k in products if (last := tracker.last(k)) is not None},
            "sequence_num": self.sequence.tracker.last(self.sequence.label),
        }
        return orjson.dumps(state)

    def restore(self, checkpoint: bytes) -> None:
        """Set the books and id trackers to a `checkpoint()`'s (other books are emptied)."""
        state = orjson.loads(checkpoint)
        for book in self.books.values():
            book.clear()
        for product, sides in state["books"].items():
            bids, asks = (
                tuple((Decimal(p), Decimal(s)) for p, s in sides[k]) for k in ("bids", "asks")
            )
            self.book(product).apply_snapshot(BookSnapshot(product, bids, asks, None, 0))
        for product, last in state["trade_ids"].items():
            self.trades.tracker.seed(product, int(last))
        if state["sequence_num"] is not None:
            self.sequence.tracker.seed(self.sequence.label, int(state["sequence_num"]))

    @staticmethod
    def checkpoint_feed(checkpoint: bytes) -> tuple[Feed, tuple[str, ...]]:
        """The feed and products a `checkpoint()` was taken of."""
        state = orjson.loads(checkpoint)
        return Feed(state["feed"]), tuple(state["products"])

    def _logged_frame(self, frame: Frame, received_us: int) -> ParseResult:
        frame_log = self.frame_log
        assert frame_log is not None
        with frame_log.lock:
            if frame_log.roll_due:
                frame_log.roll(self.checkpoint())
            frame_log.append(frame, received_us)
            return FeedSession.handle_frame(self, frame, received_us)

    def handle_frame(self, frame: Frame, received_us: int) -> ParseResult:
        """Run one received frame through parse, books, trackers and consumers."""
        result = parse_frame(frame, received_us, self.feed)
        for tap in self.taps:
            tap(frame, received_us, result)
        stats = self.stats
        stats.frames += 1
        stats.messages[result.type] += 1
        if received_us >= self._report_due_us:
            self._report_due_us = received_us + REPORT_EVERY_US
            self.report_counts()
        seen = None if result.sequence_num is None else self.sequence.frame(result.sequence_num)
        if isinstance(result, Invalid):
            stats.invalid[result.reason] += 1
            return result
        if seen is not None and seen.kind is SequenceKind.DUPLICATE:
            # A repeated frame would count its trades twice; its book changes are already in.
            stats.duplicate_frames += 1
            return result
        apply = self._apply
        consumers = self.consumers
        follow = self._follow
        for event in result.events:
            if follow is not None:
                product = getattr(event, "product", None)
                if product is not None and product not in follow:
                    self._unsubscribed(product)
                    continue
            handler = apply.get(type(event))
            applied = True if handler is None else handler(event)
            if applied is False:
                continue
            book = None if applied is True else applied
            for consumer in consumers:
                consumer(event, book)
        return result

    def report_counts(self) -> None:
        """Add the frames received since the last report to their counters, and set the
        newest-trade gauges."""
        self.trades.report()
        reported = self._reported
        for kind, frames in self.stats.messages.items():
            if frames != reported[kind]:
                self._report_frames(kind)

    @counted(MESSAGES_RECEIVED, amount=lambda r: r.frames, labels_from_result=lambda r: r.type)
    def _report_frames(self, kind: str) -> FrameCount:
        """Mark the frames of type `kind` received so far as reported; return how many that
        report adds."""
        frames = self.stats.messages[kind]
        added = FrameCount(kind, frames - self._reported[kind])
        self._reported[kind] = frames
        return added

    def connection_started(self) -> None:
        """A new connection: books are stale until their snapshots, counters restart."""
        frame_log = self.frame_log
        if frame_log is not None:
            with frame_log.lock:
                if frame_log.roll_due:
                    frame_log.roll(self.checkpoint())
                frame_log.connected(time.time_ns() // 1000)
        for book in self.books.values():
            book.clear()
        self.pending_resyncs.clear()
        self.trades.reconnected()
        self.sequence.reconnected()

    def close(self) -> None:
        """The feed has ended: a trade still held as a suspect is dropped and its id counted
        invalid (``reason="id_out_of_range"``), as a rejected suspect is, not left uncounted."""
        for product in list(self._held):
            del self._held[product]
            self.trades.tracker.reject(product)

    def _product(self, product: str) -> ProductStats:
        stats = self.stats.products.get(product)
        if stats is None:
            stats = self.stats.products[product] = ProductStats()
        return stats

    def _sequence_gap(self, gap: Gap) -> None:
        # A dropped frame may have carried level2 changes for any product of the connection.
        products = tuple(p for p, book in self.books.items() if book.ready)
        for product in products:
            self.books[product].clear()
        if products:
            self._resync("sequence_gap", products)

    def _snapshot(self, snap: BookSnapshot) -> OrderBook | bool:
        book = self.book(snap.product)
        book.apply_snapshot(snap)
        self._product(snap.product).snapshots += 1
        if book.is_crossed():
            self._drop_crossed(book)  # its event is not passed on
            return False
        return book

    def _update(self, update: BookUpdate) -> OrderBook | bool:
        book = self.books.get(update.product)
        stats = self.stats.products.get(update.product) or self._product(update.product)
        if book is None or not book.ready:
            stats.stale_updates += 1
            return False
        book.apply_update(update)
        stats.book_updates += 1
        if book.is_crossed():
            self._drop_crossed(book)  # its event is not passed on
            return False
        return book

    @counted(CROSSED_BOOKS, labels_from_result=lambda resync: {"product": resync.products[0]})
    def _drop_crossed(self, book: OrderBook) -> Resync:
        """A crossed book is wrong: empty it and ask for a fresh snapshot; return the request."""
        self._product(book.product).crossed_books += 1
        book.clear()
        return self._resync("crossed_book", (book.product,))

    @counted(RESYNCS, labels_from_result=lambda resync: {"reason": resync.reason})
    def _resync(self, reason: str, products: tuple[str, ...]) -> Resync:
        resync = Resync(reason, products)
        for product in products:
            self._product(product).resyncs += 1
        self.pending_resyncs.append(resync)
        return resync

    def _trade(self, trade: Trade) -> bool:
        stats = self._product(trade.product)
        if self.feed is not Feed.EXCHANGE:
            stats.trades += 1
            return True
        kind = self.trades.trade(trade).kind
        self._settle_held(trade.product)
        if kind is SequenceKind.DUPLICATE:
            # Seen before (a repeated match, or the `last_match` replayed on resubscribing):
            # consumers must store each trade once.
            stats.duplicate_trades += 1
            return False
        if kind is SequenceKind.SUSPECT:
            self._held[trade.product] = trade
            return False
        stats.trades += 1
        return True

    def backfilled(self, trades: Iterable[Trade]) -> list[Trade]:
        """Of trades the REST API supplied for gaps, those still missing (the gap tracker now
        counts them late); the ones the websocket delivered meanwhile are dropped."""
        return [t for t in trades if self._backfilled(t).kind is SequenceKind.LATE]

    @counted(
        TRADES_BACKFILLED,
        amount=lambda seen: 1 if seen.kind is SequenceKind.LATE else 0,
        labels_from_result=lambda seen: {"product": seen.trade.product},
    )
    def _backfilled(self, trade: Trade) -> TradeSeen:
        """Observe one backfilled trade's id."""
        seen = TradeSeen(trade, self.trades.tracker.observe(trade.product, trade.trade_id).kind)
        if seen.kind is SequenceKind.LATE:
            self._product(trade.product).backfilled += 1
        return seen

    def _heartbeat(self, beat: Heartbeat) -> bool:
        if self.feed is Feed.EXCHANGE:
            self.trades.heartbeat(beat)
            if beat.product is not None:
                self._settle_held(beat.product)
        return True

    def _settle_held(self, product: str) -> None:
        """Pass on the held suspect trade of ``product`` once its id is confirmed; forget it
        once rejected."""
        held = self._held.get(product)
        if held is None or self.trades.tracker.suspect(product) == held.trade_id:
            return
        del self._held[product]
        last = self.trades.tracker.last(product)
        if last is not None and last >= held.trade_id:
            self._product(product).trades += 1
            for consumer in self.consumers:
                consumer(held, None)

    @counted(MESSAGES_INVALID, labels_from_result=lambda reason: {"reason": reason})
    def _unsubscribed(self, product: str) -> InvalidReason:
        """Count an event for a product that was not subscribed (it creates no state)."""
        self.stats.invalid[InvalidReason.UNSUBSCRIBED_PRODUCT] += 1
        return InvalidReason.UNSUBSCRIBED_PRODUCT

    @counted(MESSAGES_INVALID, labels_from_result=lambda reason: {"reason": reason})
    def _id_out_of_range(self, key: str, seq: int) -> InvalidReason:
        """Count an id a tracker rejected as implausibly far ahead; return the reason."""
        self.stats.invalid[InvalidReason.ID_OUT_OF_RANGE] += 1
        _log.warning("skipped id %d of %s: implausibly far ahead and not confirmed", seq, key)
        return InvalidReason.ID_OUT_OF_RANGE
