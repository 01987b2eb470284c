"""The Coinbase Advanced Trade feed (`wss://advanced-trade-ws.coinbase.com`) for one connection:
one channel per subscribe message, envelopes with a per-connection `sequence_num`, level2 asks
spelled `offer`, trades batched every 250 ms, heartbeats counting server uptime."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any

from quotewatch.simulate.faults import Frame
from quotewatch.simulate.market import (
    US,
    BookChange,
    Event,
    Market,
    Match,
    Tick,
    trimmed,
)
from quotewatch.simulate.timefmt import go_time, iso_ns, iso_us

WIRE_CHANNELS = {"level2": "l2_data", "market_trades": "market_trades", "heartbeats": "heartbeats"}
NOT_SIMULATED = ("ticker", "ticker_batch", "candles", "status", "user", "futures_balance_summary")
# How often a level2 snapshot comes before the subscriptions ack; either way `sequence_num`
# follows the order frames are sent in, as on the real feed.
SNAPSHOT_FIRST = 0.5
TRADES_EVERY_US = 250_000
ZERO_TIME = "0001-01-01T00:00:00.000000Z"
SIDES = {"buy": "bid", "sell": "offer"}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _error(message: str) -> Frame:
    return Frame(_dumps({"type": "error", "message": message}), stream=False)


class AdvancedSession:
    """One Advanced Trade connection: its subscriptions, its `sequence_num` and its frames."""

    protocol = "advanced"

    def __init__(self, market: Market, rng: random.Random, heartbeat_base: int) -> None:
        self._market = market
        self._rng = rng
        self._heartbeat_base = heartbeat_base
        self.subscribed = False
        self.sequence_num = 0  # the number the next frame gets
        self._subs: dict[str, list[str]] = {}
        self._l2: dict[str, list[dict[str, str]]] = {}
        self._trades: list[dict[str, str]] = []
        self._trade_ids: list[tuple[str, int]] = []

    def _frame(
        self,
        channel: str,
        events: list[Any],
        t: int,
        *,
        stream: bool = True,
        trade_ids: tuple[tuple[str, int], ...] = (),
        body: Any = None,
    ) -> Frame:
        """A frame without its `sequence_num`: `number` gives it one as it is sent, so frames
        that faults add in between take their numbers in order."""
        head = f'{{"channel":"{channel}","timestamp":"{iso_ns(t)}","sequence_num":'
        tail = ',"events":' + _dumps(events)
        return Frame(head, stream=stream, trade_ids=trade_ids, tail=tail, time_us=t, body=body)

    def number(self, frame: Frame) -> Frame:
        """The frame with the connection's next `sequence_num` (errors have none)."""
        if not frame.tail:
            return frame
        seq = self.sequence_num
        self.sequence_num += 1
        text = f"{frame.text}{seq}{frame.tail}}}"
        return Frame(
            text, frame.stream, frame.trade_ids, seq, time_us=frame.time_us, body=frame.body
        )

    # --- client messages ------------------------------------------------------------------

    def handle(self, text: str | bytes) -> list[Frame]:
        """Answer one client message."""
        try:
            msg = json.loads(text)
        except ValueError:
            return [_error("failure to parse message: invalid JSON")]
        if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
            return [_error("type must be subscribe or unsubscribe")]
        channel = msg.get("channel")
        if not isinstance(channel, str):
            return [_error('channel must be one channel name, e.g. "level2"')]
        if channel in NOT_SIMULATED:
            return [
                _error(f"Failed to subscribe: {channel} is not supported by quotewatch simulate")
            ]
        if channel not in WIRE_CHANNELS:
            return [_error(f"Failed to subscribe: unknown channel {channel}")]
        products = msg.get("product_ids", [])
        if not isinstance(products, list) or (not products and channel != "heartbeats"):
            return [_error(f"Failed to subscribe: {channel} needs product_ids")]
        for product in products:
            if product not in self._market.products:
                return [_error(f"Failed to subscribe: {product} is not a valid product")]
        now = self._market.now_us
        if msg["type"] == "unsubscribe":
            kept = [p for p in self._subs.get(channel, []) if p not in products]
            if kept and products:
                self._subs[channel] = kept
            else:
                self._subs.pop(channel, None)
            return [self._ack(now)]
        current = self._subs.setdefault(channel, [])
        current.extend(p for p in products if p not in current)
        self.subscribed = True
        if channel == "level2":
            if self._rng.random() < SNAPSHOT_FIRST:
                return [*(self._l2_snapshot(p, now) for p in products), self._ack(now)]
            return [self._ack(now), *(self._l2_snapshot(p, now) for p in products)]
        ack = self._ack(now)
        if channel == "market_trades":
            return [ack, self._trades_snapshot(products, now)]
        return [ack]

    def _ack(self, now: int) -> Frame:
        subscriptions = {
            c: (list(p) if p or c != "heartbeats" else ["heartbeats"])
            for c, p in self._subs.items()
        }
        return self._frame("subscriptions", [{"subscriptions": subscriptions}], now, stream=False)

    def _l2_snapshot(self, product: str, now: int) -> Frame:
        pm = self._market.products[product]
        bids, asks = pm.book()
        price, size = pm.spec.price_str, pm.spec.size_str
        when = iso_us(now)
        updates = [
            {"side": side, "event_time": when, "price_level": trimmed(price(p)),
             "new_quantity": trimmed(size(q))}
            for side, levels in (("bid", bids), ("offer", asks))
            for p, q in levels
        ]  # fmt: skip
        self._l2.pop(product, None)
        event = {"type": "snapshot", "product_id": product, "updates": updates}
        return self._frame("l2_data", [event], now, stream=False)

    def _trades_snapshot(self, products: list[str], now: int) -> Frame:
        trades = [self._trade(m) for p in products for m in self._market.products[p].recent]
        trades.sort(key=lambda t: t["time"])
        event = {"type": "snapshot", "trades": trades}
        return self._frame("market_trades", [event], now, stream=False)

    def _trade(self, match: Match) -> dict[str, str]:
        spec = self._market.products[match.product].spec
        return {
            "product_id": match.product,
            "trade_id": str(match.trade_id),
            "price": trimmed(spec.price_str(match.price)),
            "size": trimmed(spec.size_str(match.size)),
            "time": iso_us(match.time_us),
            "side": match.maker_side.upper(),
        }

    # --- market events --------------------------------------------------------------------

    def on_events(self, events: Iterable[Event]) -> list[Frame]:
        """The frames these market events produce for this connection's subscriptions."""
        level2 = self._subs.get("level2", ())
        trades = self._subs.get("market_trades", ())
        out: list[Frame] = []
        for event in events:
            if isinstance(event, BookChange):
                if event.product in level2:
                    spec = self._market.products[event.product].spec
                    when = iso_us(event.time_us)
                    self._l2.setdefault(event.product, []).extend(
                        {"side": SIDES[s], "event_time": when,
                         "price_level": trimmed(spec.price_str(p)),
                         "new_quantity": trimmed(spec.size_str(q))}
                        for s, p, q in event.changes
                    )  # fmt: skip
            elif isinstance(event, Match):
                if event.product in trades:
                    self._trades.append(self._trade(event))
                    self._trade_ids.append((event.product, event.trade_id))
            elif isinstance(event, Tick):
                out.extend(self._flush(event.time_us))  # heartbeats too: per connection
        return out

    def _flush(self, t: int) -> list[Frame]:
        out: list[Frame] = []
        for product, updates in self._l2.items():
            if updates:
                event = {"type": "update", "product_id": product, "updates": list(updates)}
                out.append(self._frame("l2_data", [event], t, body=event))
                updates.clear()
        if self._trades and t % TRADES_EVERY_US == 0:
            event = {"type": "update", "trades": list(self._trades)}
            out.append(self._frame("market_trades", [event], t, trade_ids=tuple(self._trade_ids)))
            self._trades.clear()
            self._trade_ids.clear()
        if "heartbeats" in self._subs and t % US == 0:
            uptime = self._heartbeat_base * US + (t - self._market.start_us)
            beat = {"current_time": go_time(t, uptime), "heartbeat_counter": uptime // US}
            out.append(self._frame("heartbeats", [beat], t))
        return out

    # --- faults ---------------------------------------------------------------------------

    def malformed_frame(self, rng: random.Random, after: Frame) -> str:
        """A malformed frame to follow `after`. Unparsable ones take no `sequence_num`; the
        others take the next one and carry only bad data or data repeated from `after`, so
        skipping their events loses nothing."""
        t = after.time_us
        product = next(iter(self._market.products))
        kind = rng.randrange(8)
        if kind == 0 or (kind == 4 and after.body is None):
            return '{"channel":"l2_data","timestamp":"' + iso_ns(t) + '","sequence_num":'
        update = {"side": "bid", "event_time": iso_us(t), "price_level": "1", "new_quantity": "1"}
        events: Any
        channel = "l2_data"
        if kind == 1:
            channel, events = "mystery", [{"type": "update"}]
        elif kind == 2:
            events = [{"type": "update", "product_id": product,
                       "updates": [{**update, "side": "middle"}]}]  # fmt: skip
        elif kind == 3:
            bad = ["0.-10000", "NaN", "-1.5"][rng.randrange(3)]
            events = [{"type": "update", "product_id": product,
                       "updates": [{**update, "new_quantity": bad}]}]  # fmt: skip
        elif kind == 4:
            last = after.body["updates"][-1]
            events = [{"type": "update", "product_id": after.body["product_id"],
                       "updates": [{**last, "event_time": ZERO_TIME}]}]  # fmt: skip
        elif kind == 5:
            events = [{"type": "update", "product_id": product}]
        elif kind == 6:
            events = "update"
        else:
            channel = "market_trades"
            trade = {"product_id": product, "trade_id": 12, "price": "NaN", "size": "1",
                     "time": iso_us(t), "side": "BUY"}  # fmt: skip
            events = [{"type": "update", "trades": [trade]}]
        return self.number(self._frame(channel, events, t)).text
