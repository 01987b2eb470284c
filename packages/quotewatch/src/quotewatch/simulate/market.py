"""The deterministic market model behind `quotewatch simulate`: pure, no I/O, no wall clock.

Each product has its own random generator seeded from (seed, product), a mid price that follows
a random walk, and three Poisson order flows (limit, cancel, market) plus a flow of order events
that never reach the level2 book (IOC misses, stop triggers). The book follows the moving mid the
way a real one does: limit orders land around the mid and sweep what they cross, makers pull
quotes the mid has moved through and step in on a side left far behind it, and orders placed
behind the best put back the levels that cancels and sweeps take, so the book stays two-sided
and near its depth however long it runs. Every full-channel event (received,
open, done, match) advances the product's hidden `sequence`, so the `sequence` shown on matches
jumps the way the real feed's does while `trade_id` steps by exactly 1.

Time is simulated: `advance(until_us)` produces every event up to `until_us`, in time order, and
the output depends only on the seed and the options, never on how the calls are chunked.
"""

from __future__ import annotations

import bisect
import math
import random
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

US = 1_000_000
TICK_US = 50_000  # the batching grid: level2_batch every 50 ms, market_trades every 250 ms
RECENT_TRADES = 50

# Per product and second at rate 1.0: about 30 level changes and 3 trades, the real ballpark.
LIMIT_RATE = 14.0
CANCEL_RATE = 12.0
MARKET_RATE = 1.2
HIDDEN_RATE = 60.0
TOTAL_RATE = LIMIT_RATE + CANCEL_RATE + MARKET_RATE + HIDDEN_RATE
# Of the price, per square-root second, for the mid the book follows. The book's own mid then
# moves more than 0.01% (the labeler's default threshold) in about one 500 ms window in six for
# BTC-USD, as on a lively day of the real feed; the model sees both labels within a minute.
VOLATILITY = 1.5e-4
ORDER_NOTIONAL = 2_000.0  # mean order value in quote currency


class UnknownProductError(ValueError):
    """A product the simulator has no specification for."""


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """How one product is priced: starting mid, price and size decimals."""

    product: str
    price: float
    price_decimals: int
    size_decimals: int

    def price_str(self, ticks: int) -> str:
        """The price as a decimal string with all price decimals ("65000.10")."""
        return _fixed(ticks, self.price_decimals)

    def size_str(self, quanta: int) -> str:
        """The size as a decimal string with all size decimals ("0.00500000")."""
        return _fixed(quanta, self.size_decimals)


def _fixed(units: int, decimals: int) -> str:
    if decimals == 0:
        return str(units)
    scale = 10**decimals
    return f"{units // scale}.{units % scale:0{decimals}d}"


def trimmed(text: str) -> str:
    """A decimal string without trailing zeros, as Advanced Trade sends it ("0.005", "65062.5")."""
    if "." not in text:
        return text
    text = text.rstrip("0").rstrip(".")
    return text or "0"


SPECS: dict[str, ProductSpec] = {
    s.product: s
    for s in (
        ProductSpec("BTC-USD", 65_000.0, 2, 8),
        ProductSpec("ETH-USD", 3_000.0, 2, 8),
        ProductSpec("SOL-USD", 150.0, 2, 8),
        ProductSpec("LTC-USD", 80.0, 2, 8),
        ProductSpec("AVAX-USD", 30.0, 2, 8),
        ProductSpec("LINK-USD", 15.0, 3, 2),
        ProductSpec("XRP-USD", 0.55, 4, 6),
        ProductSpec("ADA-USD", 0.45, 4, 2),
        ProductSpec("DOGE-USD", 0.15, 5, 1),
    )
}


def spec_for(product: str) -> ProductSpec:
    """The specification of a simulated product, or a clear error listing the known ones."""
    try:
        return SPECS[product]
    except KeyError:
        raise UnknownProductError(
            f"unknown product {product!r}: the simulator knows {', '.join(SPECS)}"
        ) from None


@dataclass(frozen=True, slots=True)
class Bursts:
    """Every `every_s` seconds of simulated time, rates run `factor` times higher for
    `duration_s` seconds."""

    factor: float = 1.0
    every_s: float | None = None
    duration_s: float = 0.0

    def factor_at(self, elapsed_us: int) -> float:
        """The rate multiplier at `elapsed_us` after the start."""
        if self.every_s is None or self.factor == 1.0:
            return 1.0
        return self.factor if elapsed_us % round(self.every_s * US) < self._duration_us else 1.0

    def next_change(self, elapsed_us: int) -> int | None:
        """The first elapsed time after `elapsed_us` at which the multiplier changes."""
        if self.every_s is None or self.factor == 1.0:
            return None
        period = round(self.every_s * US)
        base = elapsed_us - elapsed_us % period
        into = elapsed_us - base
        return base + self._duration_us if into < self._duration_us else base + period

    @property
    def _duration_us(self) -> int:
        return round(self.duration_s * US)


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookChange:
    """Level2 changes from one order event; sizes are new totals (0 removes the level)."""

    product: str
    time_us: int
    changes: tuple[tuple[str, int, int], ...]  # (side "buy"|"sell", price ticks, size quanta)


@dataclass(frozen=True, slots=True)
class Match:
    """One trade. `maker_side` is the resting order's side, as Coinbase's `side` field."""

    product: str
    time_us: int
    trade_id: int
    sequence: int
    maker_side: str
    price: int
    size: int
    maker_order_id: str
    taker_order_id: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The product's counters at a whole simulated second."""

    product: str
    time_us: int
    sequence: int
    last_trade_id: int


@dataclass(frozen=True, slots=True)
class Tick:
    """A 50 ms boundary of simulated time: batching protocols flush what came before it."""

    time_us: int


Event = BookChange | Match | Heartbeat | Tick


# --- the book ----------------------------------------------------------------------------------


class _Side:
    """One side of an aggregated book: price ticks -> size quanta, with sorted prices."""

    __slots__ = ("is_bid", "levels", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, int] = {}
        self.prices: list[int] = []  # ascending

    def __len__(self) -> int:
        return len(self.prices)

    def nth_best(self, n: int) -> int:
        return self.prices[-1 - n] if self.is_bid else self.prices[n]

    def add(self, price: int, qty: int) -> int:
        total = self.levels.get(price, 0) + qty
        if price not in self.levels:
            bisect.insort(self.prices, price)
        self.levels[price] = total
        return total

    def reduce(self, price: int, qty: int) -> int:
        total = self.levels[price] - qty
        if total <= 0:
            del self.levels[price]
            del self.prices[bisect.bisect_left(self.prices, price)]
            return 0
        self.levels[price] = total
        return total

    def best_first(self) -> list[tuple[int, int]]:
        order: Iterable[int] = reversed(self.prices) if self.is_bid else self.prices
        return [(p, self.levels[p]) for p in order]


class ProductMarket:
    """One product's book, counters and order flow."""

    def __init__(
        self,
        spec: ProductSpec,
        *,
        seed: int,
        depth: int,
        rate: float,
        bursts: Bursts,
        start_us: int,
    ) -> None:
        self.spec = spec
        self._rng = random.Random(f"quotewatch-simulate:{seed}:{spec.product}")
        rng = self._rng
        self._depth = depth
        self._rate = rate
        self._bursts = bursts
        self._start_us = start_us
        scale = 10**spec.price_decimals
        self._mid: float = spec.price * scale * (1 + rng.uniform(-0.01, 0.01))
        self._sigma: float = self._mid * VOLATILITY
        self._offset_mean: float = max(3.0, 2 * self._sigma)
        self._gap = max(1.0, self._offset_mean / 40)  # mean ticks between levels deep in the book
        self._refill_mean = depth * (1 + self._gap) / 10  # a tenth of the initial book's width
        self._qty_mean = max(1.0, ORDER_NOTIONAL / spec.price * 10**spec.size_decimals)
        self.bids = _Side(is_bid=True)
        self.asks = _Side(is_bid=False)
        self.sequence = rng.randrange(10**8, 10**10)
        self.last_trade_id = rng.randrange(10**6, 10**9)
        self.recent: deque[Match] = deque(maxlen=RECENT_TRADES)
        self._build_book()
        # A trade from before the start, for `last_match` and the market_trades snapshot.
        self._trade(start_us - rng.randrange(US, 30 * US), rng.choice(("buy", "sell")),
                    round(self._mid), self._qty())  # fmt: skip
        self._t = start_us
        self.next_us = self._schedule(start_us)

    def _build_book(self) -> None:
        rng = self._rng
        gap = self._gap
        for side, sign in ((self.bids, -1), (self.asks, 1)):
            price = round(self._mid) + sign * (1 + int(rng.expovariate(1 / gap)))
            for _ in range(self._depth):
                if price <= 0:
                    break
                side.add(price, self._qty())
                price += sign * (1 + int(rng.expovariate(1 / gap)))

    def _qty(self) -> int:
        qty: float = self._qty_mean * self._rng.lognormvariate(-0.5, 1.0)
        return max(1, round(qty))

    def _order_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _schedule(self, t: int) -> int:
        while True:
            factor = self._bursts.factor_at(t - self._start_us)
            nxt = t + max(1, round(self._rng.expovariate(TOTAL_RATE * self._rate * factor) * US))
            change = self._bursts.next_change(t - self._start_us)
            if change is None or nxt < change + self._start_us:
                return nxt
            t = change + self._start_us  # memoryless: restart the draw at the new rate

    def step(self) -> list[BookChange | Match]:
        """Process the next order event (at `next_us`) and schedule the one after."""
        t = self.next_us
        rng = self._rng
        self._mid += rng.gauss(0.0, self._sigma * math.sqrt((t - self._t) / US))
        self._mid = max(self._mid, 10.0 * self._offset_mean)
        self._t = t
        self.next_us = self._schedule(t)
        pick = rng.random() * TOTAL_RATE
        if pick < LIMIT_RATE:
            return self._limit(t)
        pick -= LIMIT_RATE
        if pick < CANCEL_RATE:
            return self._cancel(t)
        pick -= CANCEL_RATE
        if pick < MARKET_RATE:
            return self._market(t)
        self.sequence += 2  # received + done of an order the book never shows
        return []

    def _limit(self, t: int) -> list[BookChange | Match]:
        rng = self._rng
        # The shorter side gets more of the flow, which keeps the book two-sided while the mid
        # runs through one side of it.
        buy = rng.random() * (len(self.bids) + len(self.asks) + 2) < len(self.asks) + 1
        thin_bids, thin_asks = self._thin(self.bids), self._thin(self.asks)
        if thin_bids != thin_asks:
            buy = thin_bids  # makers step in where the quote has run away from the mid
        side = self.bids if buy else self.asks
        sign = -1 if buy else 1
        if not (thin_bids or thin_asks) and len(side) < self._depth and rng.random() < 0.5:
            # Behind the best: cancels and sweeps take levels away and these put them back,
            # close enough behind the top that a large sweep does not fall through a hole.
            price = side.nth_best(0) + sign * (1 + int(rng.expovariate(1 / self._refill_mean)))
        else:
            near = math.floor(self._mid) if buy else math.ceil(self._mid)
            price = near + sign * int(rng.expovariate(1 / self._offset_mean))
        price = max(1, price)
        qty = self._qty()
        self.sequence += 1  # received
        out, changes, left = self._sweep(t, "buy" if buy else "sell", qty, price)
        if left:
            self.sequence += 1  # open
            changes.append(("buy" if buy else "sell", price, side.add(price, left)))
        else:
            self.sequence += 1  # done
        if changes:
            out.append(BookChange(self.spec.product, t, tuple(changes)))
        return out

    def _thin(self, side: _Side) -> bool:
        """Whether `side` is empty or its best is more than two mean order offsets off the mid."""
        if not side:
            return True
        distance = self._mid - side.nth_best(0) if side.is_bid else side.nth_best(0) - self._mid
        return distance > 2 * self._offset_mean

    def _cancel(self, t: int) -> list[BookChange | Match]:
        rng = self._rng
        buy = rng.random() < 0.5
        side = self.bids if buy else self.asks
        if not side:
            return []
        self.sequence += 1  # done
        best = side.nth_best(0)
        if best > self._mid if buy else best < self._mid:
            # Makers pull quotes the mid has moved through rather than wait to be picked off.
            price, qty = best, side.levels[best]
        elif rng.random() < min(0.9, 0.5 * len(side) / self._depth):
            # Far levels go too; the refills in `_limit` put levels back.
            price = side.nth_best(rng.randrange(len(side)))
            qty = side.levels[price]
        else:
            price = side.nth_best(min(len(side) - 1, int(rng.expovariate(1 / 8))))
            qty = self._qty()
        change = ("buy" if buy else "sell", price, side.reduce(price, qty))
        return [BookChange(self.spec.product, t, (change,))]

    def _market(self, t: int) -> list[BookChange | Match]:
        taker = "buy" if self._rng.random() < 0.5 else "sell"
        self.sequence += 1  # received
        out, changes, _ = self._sweep(t, taker, 2 * self._qty(), None)
        self.sequence += 1  # done
        if changes:
            out.append(BookChange(self.spec.product, t, tuple(changes)))
        return out

    def _sweep(
        self, t: int, taker: str, qty: int, limit: int | None
    ) -> tuple[list[BookChange | Match], list[tuple[str, int, int]], int]:
        """Fill `qty` against the other side up to `limit`; return matches, changes, remainder."""
        book = self.asks if taker == "buy" else self.bids
        maker = "sell" if taker == "buy" else "buy"
        matches: list[BookChange | Match] = []
        changes: list[tuple[str, int, int]] = []
        taker_id = self._order_id()
        while qty and book:
            best = book.nth_best(0)
            if limit is not None and (best > limit if taker == "buy" else best < limit):
                break
            fill = min(qty, book.levels[best])
            left = book.reduce(best, fill)
            matches.append(self._trade(t, maker, best, fill, taker_id))
            if not left:
                self.sequence += 1  # the maker order is done
            changes.append((maker, best, left))
            qty -= fill
        return matches, changes, qty

    def _trade(
        self, t: int, maker: str, price: int, size: int, taker_id: str | None = None
    ) -> Match:
        self.sequence += 1
        self.last_trade_id += 1
        match = Match(
            self.spec.product,
            t,
            self.last_trade_id,
            self.sequence,
            maker,
            price,
            size,
            self._order_id(),
            taker_id or self._order_id(),
        )
        self.recent.append(match)
        return match

    def book(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The whole book now: bids best-first, asks best-first, as (price ticks, size quanta)."""
        return self.bids.best_first(), self.asks.best_first()


class Market:
    """Several products on one simulated clock, merged into a single time-ordered stream."""

    def __init__(
        self,
        products: Iterable[str],
        *,
        seed: int,
        start_us: int,
        depth: int = 1000,
        rate: float = 1.0,
        bursts: Bursts | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1 level per side, got {depth}")
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        names = list(dict.fromkeys(products))
        if not names:
            raise ValueError("the market needs at least one product, e.g. BTC-USD")
        bursts = bursts or Bursts()
        self.start_us = start_us
        self.now_us = start_us
        self.products: dict[str, ProductMarket] = {
            p: ProductMarket(
                spec_for(p), seed=seed, depth=depth, rate=rate, bursts=bursts, start_us=start_us
            )
            for p in names
        }
        self._next_tick = start_us - start_us % TICK_US + TICK_US

    def advance(self, until_us: int) -> list[Event]:
        """Every event with a time up to `until_us`, in time order; ticks before equal times."""
        out: list[Event] = []
        markets = list(self.products.values())
        while True:
            nxt = min(markets, key=lambda m: m.next_us)
            if self._next_tick <= nxt.next_us:
                if self._next_tick > until_us:
                    break
                tick = self._next_tick
                out.append(Tick(tick))
                if tick % US == 0:
                    out.extend(
                        Heartbeat(m.spec.product, tick, m.sequence, m.last_trade_id)
                        for m in markets
                    )
                self._next_tick += TICK_US
            else:
                if nxt.next_us > until_us:
                    break
                out.extend(nxt.step())
        self.now_us = max(self.now_us, until_us)
        return out
