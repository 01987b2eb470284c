"""The Coinbase Exchange feed (`wss://ws-feed.exchange.coinbase.com`) for one connection:
subscribe handling and message rendering, as described in notes/coinbase-protocol.md."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Iterable
from typing import Any

from quotewatch.simulate.faults import Frame
from quotewatch.simulate.market import BookChange, Event, Heartbeat, Market, Match, Tick
from quotewatch.simulate.timefmt import iso_us

AUTH_CHANNELS = ("level2", "level3", "full")
CHANNELS = ("level2", "level2_batch", "matches", "heartbeat")
NOT_SIMULATED = ("ticker", "ticker_batch", "status", "auctionfeed", "rfq_matches", "balance")
AUTH_FIELDS = ("signature", "key", "passphrase", "timestamp")
AUTH_REASON = (
    "level2, level3, and full channels now require authentication. "
    "See https://docs.cdp.coinbase.com/exchange/docs/websocket-auth"
)
ACK_REPEAT = 0.25  # the real ack sometimes arrives twice in a row
ZERO_TIME = "0001-01-01T00:00:00.000000Z"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _error(message: str, reason: str) -> Frame:
    return Frame(_dumps({"type": "error", "message": message, "reason": reason}), stream=False)


def sign(secret_b64: str, timestamp: str) -> str:
    """The Exchange websocket signature: base64 HMAC-SHA256 of timestamp + GET + verify path."""
    key = base64.b64decode(secret_b64)
    message = f"{timestamp}GET/users/self/verify".encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


class _SubscribeError(Exception):
    def __init__(self, reason: str, message: str = "Failed to subscribe") -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


class ExchangeSession:
    """One Exchange connection: its subscriptions and the frames it is owed."""

    protocol = "exchange"

    def __init__(self, market: Market, rng: random.Random, auth_secret: str | None) -> None:
        self._market = market
        self._rng = rng
        self._auth_secret = auth_secret
        self.subscribed = False
        self._subs: dict[str, list[str]] = {}  # channel -> products, in subscription order
        self._batch: dict[str, dict[tuple[str, int], int]] = {}
        self._batch_time: dict[str, int] = {}

    # --- client messages ------------------------------------------------------------------

    def handle(self, text: str | bytes) -> list[Frame]:
        """Answer one client message."""
        try:
            msg = json.loads(text)
        except ValueError:
            return [_error("Failed to subscribe", "malformed JSON")]
        try:
            if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
                raise _SubscribeError("Type has to be either subscribe or unsubscribe")
            wanted = self._parse_channels(msg)
            if msg["type"] == "subscribe":
                self._check_auth(msg, wanted)
        except _SubscribeError as exc:
            return [_error(exc.message, exc.reason)]
        if msg["type"] == "unsubscribe":
            for name, products in wanted.items():
                kept = [p for p in self._subs.get(name, []) if p not in products]
                if kept:
                    self._subs[name] = kept
                else:
                    self._subs.pop(name, None)
            return self._acks()
        for name, products in wanted.items():
            current = self._subs.setdefault(name, [])
            current.extend(p for p in products if p not in current)
        self.subscribed = True
        frames = self._acks()
        for name, products in wanted.items():
            for product in products:
                if name in ("level2", "level2_batch"):
                    frames.append(self._snapshot(product))
                elif name == "matches":
                    frames.append(self._match(self._market.products[product].recent[-1], True))
        return frames

    def _parse_channels(self, msg: dict[str, Any]) -> dict[str, list[str]]:
        default = msg.get("product_ids", [])
        channels = msg.get("channels")
        if not isinstance(channels, list) or not channels:
            raise _SubscribeError("channels must be a non-empty list")
        wanted: dict[str, list[str]] = {}
        for channel in channels:
            if isinstance(channel, str):
                name, products = channel, default
            elif isinstance(channel, dict) and isinstance(channel.get("name"), str):
                name, products = channel["name"], channel.get("product_ids", default)
            else:
                raise _SubscribeError(f"{_dumps(channel)} is not a valid channel")
            if name in ("level3", "full"):
                if not all(msg.get(f) for f in AUTH_FIELDS):
                    raise _SubscribeError(AUTH_REASON)
                raise _SubscribeError(f"{name} is not supported by quotewatch simulate")
            if name in NOT_SIMULATED:
                raise _SubscribeError(f"{name} is not supported by quotewatch simulate")
            if name not in CHANNELS:
                raise _SubscribeError(f"{name} is not a valid channel")
            if not isinstance(products, list) or not products:
                raise _SubscribeError(f"{name} needs product_ids")
            for product in products:
                if product not in self._market.products:
                    raise _SubscribeError(f"{product} is not a valid product")
            wanted.setdefault(name, []).extend(p for p in products if p not in wanted[name])
        return wanted

    def _check_auth(self, msg: dict[str, Any], wanted: dict[str, list[str]]) -> None:
        if not any(name in AUTH_CHANNELS for name in wanted):
            return
        if not all(isinstance(msg.get(f), str) and msg.get(f) for f in AUTH_FIELDS):
            raise _SubscribeError(AUTH_REASON)
        if self._auth_secret is None:
            return  # no secret configured: any credentials pass, as with a test key
        expected = sign(self._auth_secret, msg["timestamp"])
        if not hmac.compare_digest(expected, msg["signature"]):
            raise _SubscribeError("invalid signature", message="authentication failure")

    def _acks(self) -> list[Frame]:
        channels = [{"name": n, "product_ids": list(p)} for n, p in self._subs.items()]
        ack = Frame(_dumps({"type": "subscriptions", "channels": channels}), stream=False)
        return [ack, ack] if self._rng.random() < ACK_REPEAT else [ack]

    def _snapshot(self, product: str) -> Frame:
        pm = self._market.products[product]
        bids, asks = pm.book()
        price, size = pm.spec.price_str, pm.spec.size_str
        body = {
            "type": "snapshot",
            "product_id": product,
            "bids": [[price(p), size(q)] for p, q in bids],
            "asks": [[price(p), size(q)] for p, q in asks],
        }
        self._batch.pop(product, None)
        return Frame(_dumps(body), stream=False)

    # --- market events --------------------------------------------------------------------

    def on_events(self, events: Iterable[Event]) -> list[Frame]:
        """The frames these market events produce for this connection's subscriptions."""
        subs = self._subs
        level2 = subs.get("level2", ())
        batch = subs.get("level2_batch", ())
        matches = subs.get("matches", ())
        heartbeat = subs.get("heartbeat", ())
        out: list[Frame] = []
        for event in events:
            if isinstance(event, BookChange):
                if event.product in level2:
                    out.append(self._l2update(event.product, event.changes, event.time_us))
                if event.product in batch:
                    pending = self._batch.setdefault(event.product, {})
                    for side, price, qty in event.changes:
                        pending.pop((side, price), None)  # keep the latest change last
                        pending[(side, price)] = qty
                    self._batch_time[event.product] = event.time_us
            elif isinstance(event, Match):
                if event.product in matches:
                    out.append(self._match(event, False))
            elif isinstance(event, Tick):
                for product, pending in self._batch.items():
                    if pending:
                        changes = tuple((s, p, q) for (s, p), q in pending.items())
                        out.append(self._l2update(product, changes, self._batch_time[product]))
                        pending.clear()
            elif isinstance(event, Heartbeat) and event.product in heartbeat:
                body = {
                    "type": "heartbeat",
                    "sequence": event.sequence,
                    "last_trade_id": event.last_trade_id,
                    "product_id": event.product,
                    "time": iso_us(event.time_us),
                }
                out.append(Frame(_dumps(body), time_us=event.time_us))
        return out

    def _l2update(self, product: str, changes: Iterable[tuple[str, int, int]], t: int) -> Frame:
        spec = self._market.products[product].spec
        rendered = [[s, spec.price_str(p), spec.size_str(q)] for s, p, q in changes]
        body = {"type": "l2update", "product_id": product, "changes": rendered, "time": iso_us(t)}
        return Frame(_dumps(body), time_us=t, body=body)

    def _match(self, match: Match, last: bool) -> Frame:
        spec = self._market.products[match.product].spec
        body = {
            "type": "last_match" if last else "match",
            "trade_id": match.trade_id,
            "maker_order_id": match.maker_order_id,
            "taker_order_id": match.taker_order_id,
            "side": match.maker_side,
            "size": spec.size_str(match.size),
            "price": spec.price_str(match.price),
            "product_id": match.product,
            "sequence": match.sequence,
            "time": iso_us(match.time_us),
        }
        if last:
            return Frame(_dumps(body), stream=False)
        trade_ids = ((match.product, match.trade_id),)
        return Frame(_dumps(body), trade_ids=trade_ids, time_us=match.time_us, body=body)

    # --- faults ---------------------------------------------------------------------------

    def number(self, frame: Frame) -> Frame:
        """The frame as it is: the Exchange feed has no per-connection number."""
        return frame

    def malformed_frame(self, rng: random.Random, after: Frame) -> str:
        """A malformed frame like those seen on the real feed, to follow `after`. Any data it
        carries repeats `after` (sizes are totals), so skipping it, as a client must, loses
        nothing."""
        now = iso_us(after.time_us)
        body = after.body or {}
        product: str = body.get("product_id", next(iter(self._market.products)))
        kind = rng.randrange(9)
        if body.get("type") != "match" and kind >= 5:
            kind -= 5  # kinds 5-8 copy a match
        if body.get("type") != "l2update" and kind in (3, 4):
            kind -= 3  # kinds 3-4 copy an l2update
        if kind == 0:
            return '{"type":"l2update","product_id":"' + product + '","changes":[["buy","1'
        if kind == 1:
            return _dumps({"type": "auction_open", "product_id": product, "time": now})
        if kind == 2:
            return _dumps({"type": "l2update", "product_id": product, "time": now})
        if kind in (3, 4):
            side, price, size = body["changes"][-1]
            bad = ["0.-10000", "NaN", "-1.50000000"][rng.randrange(3)] if kind == 3 else size
            time = ZERO_TIME if kind == 4 else now
            return _dumps({"type": "l2update", "product_id": product,
                           "changes": [[side, price, bad]], "time": time})  # fmt: skip
        bad_match = dict(body)
        if kind == 5:
            bad_match["trade_id"] = f"{body['trade_id']}x"
        elif kind == 6:
            bad_match["price"] = "NaN"
        elif kind == 7:
            bad_match["time"] = ZERO_TIME
        else:
            del bad_match["trade_id"]
        return _dumps(bad_match)
