"""Exact gap detection for both feeds, on `qw_metrics.SequenceTracker`.

- Exchange trades: ``trade_id`` is contiguous (+1) per product, so one tracker keyed by product
  counts gaps with ``source="trade_id"``. ``last_match`` (the first trade after subscribing) is
  observed like any trade: it seeds a new product, and after a reconnect it reveals the trades
  missed while disconnected. Trade ids are not reset on reconnect: they are global.
- Exchange heartbeats: each heartbeat's ``last_trade_id`` says which trades exist. A trade may
  still be in flight when a heartbeat arrives, so heartbeat *n* checks the trades up to the
  ``last_trade_id`` of heartbeat *n-1*. Trades beyond the newest one received are then known to
  be lost (a drop at the tail, which no later trade has revealed yet): ``source="heartbeat"``.
  Those ids are remembered by the trade tracker, so the next trade does not count them again.
- Advanced Trade: ``sequence_num`` goes up by 1 on every frame of a connection, across channels.
  One tracker key per connection; the ``product`` label is the connection's products joined by
  ``,`` (``*`` when replaying a recording, whose connections are not known). It is reset when a
  connection starts (live) or when the counter restarts at 0 (replay). The server numbers
  frames in the order it sends them and one connection delivers them in order (a level2
  snapshot that comes before its subscriptions ack is also numbered before it), so a jump is a
  gap at once and ``on_gap`` fires (the session resubscribes level2). An old number is a
  duplicate, or late if it was missing.

A corrupt id far ahead (say 2**63) must not move a tracker's mark, or every later id would look
old and real losses would go unseen. An id more than `DEFAULT_MAX_ID_JUMP` (``--max-id-jump``)
beyond the newest one is held as a suspect by the tracker until the next id decides it: one
just above it confirms it (a real jump: its gap counts), one near the old mark rejects it
(``reason="id_out_of_range"`` in ``coinbase_messages_invalid_total``). A heartbeat's
``last_trade_id`` at or beyond the suspect confirms it too, and after a reconnect the first
trade of each product may jump any distance (trades went on while away).

Every gap is logged as one WARNING with its product, source, first and last missing id and
count, at most `GAP_LOG_BURST` per minute for each product and source (`GapLog`).

The gauges of the newest trade per product (`coinbase_last_trade_id`, `coinbase_match_sequence`)
matter only when read, so `TradeGaps.report` sets them from the newest trades when the session
reports its counts, not on every trade.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from qw_metrics import Gap, Observation, SequenceKind, SequenceTracker, counted, recorded

from quotewatch.events import Heartbeat, Trade
from quotewatch.ingest.invalid import RateLimitedLog
from quotewatch.metrics import LAST_TRADE_ID, MATCH_SEQUENCE, MESSAGES_MISSED, SEQUENCE_GAPS

_log = logging.getLogger(__name__)
# 1,000,000 ids: the busiest stream, BTC-USD trades (~2/s, bursts 10x: ~20/s), takes ~14 h to
# go that far, and an Advanced Trade connection (~30 frames/s for two products, ~300/s in
# bursts) ~1 h, longer than one connection lives without a reconnect; 2**63 is 10**13 times
# further. A real jump beyond it is still counted, one id (or heartbeat) later.
DEFAULT_MAX_ID_JUMP = 1_000_000
OnReject = Callable[[str, int], object]
# A feed dropping many messages gaps often; a few lines a minute per stream say enough.
GAP_LOG_BURST = 5
GAP_LOG_INTERVAL = 60.0


class GapLog:
    """Logs each gap as one WARNING, rate-limited separately for each product and source."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock
        self._logs: dict[tuple[str, str], RateLimitedLog] = {}

    def gap(self, product: str, source: str, gap: Gap) -> None:
        """Log one gap of ``product``'s ``source`` ids."""
        log = self._logs.get((product, source))
        if log is None:
            options = {} if self._clock is None else {"clock": self._clock}
            log = self._logs[product, source] = RateLimitedLog(
                _log,
                burst=GAP_LOG_BURST,
                interval=GAP_LOG_INTERVAL,
                suppressed=f"more gap warnings for {product} {source}",
                **options,
            )
        log.warning(
            "gap: product=%s source=%s missing ids %d to %d (%d missed)",
            product, source, gap.start, gap.end, gap.missed,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class HeartbeatGap:
    """Trades a heartbeat proved missing: ``gap`` of ``product``."""

    product: str
    gap: Gap


def _heartbeat_labels(result: HeartbeatGap | None) -> Mapping[str, str] | None:
    return None if result is None else {"product": result.product, "source": "heartbeat"}


@dataclass(frozen=True, slots=True)
class TradeSeen:
    """One observed trade and how its id relates to the product's stream."""

    trade: Trade
    kind: SequenceKind


def _product_labels(trade: Trade) -> Mapping[str, str]:
    return {"product": trade.product}


class TradeGaps:
    """Exchange ``trade_id`` tracking per product, and the heartbeat ``last_trade_id`` check."""

    def __init__(
        self,
        log: GapLog | None = None,
        *,
        max_jump: int = DEFAULT_MAX_ID_JUMP,
        on_reject: OnReject | None = None,
    ) -> None:
        self.log = log or GapLog()
        self.tracker: SequenceTracker[str] = SequenceTracker(
            gaps=SEQUENCE_GAPS,
            missed=MESSAGES_MISSED,
            labels=lambda product: {"product": product, "source": "trade_id"},
            on_gap=self._trade_id_gap,
            max_jump=max_jump,
            on_reject=on_reject,
        )
        # Called with each gap of trade ids, trade_id and heartbeat alike: backfill's hook.
        self.on_gap: Callable[[str, Gap], None] | None = None
        self.first_ids: dict[str, int] = {}  # the first trade id seen per product
        self._heartbeat_ids: dict[str, int] = {}
        self._newest: dict[str, Trade] = {}  # since the last report
        self.heartbeat_gaps: dict[str, list[Gap]] = {}

    def id_span(self) -> int:
        """Trade ids from the first to the newest seen, summed over products: every trade that
        exists in that range, received or not (0 before any trade)."""
        span = 0
        for product, first in self.first_ids.items():
            last = self.tracker.last(product)
            if last is not None:
                span += last - first + 1
        return span

    def _trade_id_gap(self, product: str, gap: Gap) -> None:
        self.log.gap(product, "trade_id", gap)
        if self.on_gap is not None:
            self.on_gap(product, gap)

    def trade(self, trade: Trade) -> TradeSeen:
        """Observe one trade's id."""
        self._newest[trade.product] = trade
        kind = self.tracker.observe(trade.product, trade.trade_id).kind
        if kind is SequenceKind.FIRST:
            self.first_ids.setdefault(trade.product, trade.trade_id)
        return TradeSeen(trade, kind)

    @counted(SEQUENCE_GAPS, labels_from_result=_heartbeat_labels)
    @counted(
        MESSAGES_MISSED,
        amount=lambda r: 0 if r is None else r.gap.missed,
        labels_from_result=_heartbeat_labels,
    )
    def heartbeat(self, beat: Heartbeat) -> HeartbeatGap | None:
        """Check the trades up to the previous heartbeat's ``last_trade_id``."""
        if beat.product is None or beat.last_trade_id is None:
            return None
        previous = self._heartbeat_ids.get(beat.product)
        self._heartbeat_ids[beat.product] = beat.last_trade_id
        if previous is None:
            return None
        gap = self.tracker.skip_to(beat.product, previous)
        if gap is None:
            return None
        self.heartbeat_gaps.setdefault(beat.product, []).append(gap)
        self.log.gap(beat.product, "heartbeat", gap)
        if self.on_gap is not None:
            self.on_gap(beat.product, gap)
        return HeartbeatGap(beat.product, gap)

    def report(self) -> None:
        """Set the newest-trade gauges of the products that traded since the last report."""
        while self._newest:
            self._take_newest()

    @recorded(LAST_TRADE_ID, value=lambda t: t.trade_id, labels_from_result=_product_labels)
    @recorded(MATCH_SEQUENCE, value=lambda t: t.sequence, labels_from_result=_product_labels)
    def _take_newest(self) -> Trade:
        """Take one product's newest trade since the last report off the waiting ones."""
        _, trade = self._newest.popitem()
        return trade

    def reconnected(self) -> None:
        """Forget heartbeat history: the previous connection's beats say nothing about this one.
        The first trade of each product may be any distance ahead: trades went on while away."""
        self._heartbeat_ids.clear()
        for product in self.tracker.keys():  # noqa: SIM118 (a tracker, not a dict)
            self.tracker.expect_jump(product)


class SequenceNumGaps:
    """Advanced Trade ``sequence_num`` tracking for one connection at a time."""

    def __init__(
        self,
        label: str,
        on_gap: Callable[[Gap], None] | None = None,
        log: GapLog | None = None,
        *,
        max_jump: int = DEFAULT_MAX_ID_JUMP,
        on_reject: OnReject | None = None,
    ) -> None:
        self.label = label
        self.log = log or GapLog()
        self._on_gap = on_gap
        self.tracker: SequenceTracker[str] = SequenceTracker(
            gaps=SEQUENCE_GAPS,
            missed=MESSAGES_MISSED,
            labels=lambda key: {"product": key, "source": "sequence_num"},
            on_gap=self._gap,
            max_jump=max_jump,
            on_reject=on_reject,
        )

    def _gap(self, key: str, gap: Gap) -> None:
        self.log.gap(key, "sequence_num", gap)
        if self._on_gap is not None:
            self._on_gap(gap)

    def frame(self, sequence_num: int) -> Observation:
        """Observe one frame's ``sequence_num``."""
        last = self.tracker.last(self.label)
        # A counter back at 0 is a new connection (replays see reconnects only this way).
        if sequence_num == 0 and last:
            self.tracker.reset(self.label)
        return self.tracker.observe(self.label, sequence_num)

    def reconnected(self) -> None:
        """A new connection starts its counter at 0."""
        self.tracker.reset(self.label)
