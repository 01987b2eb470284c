"""The deterministic market model behind `quotewatch simulate`: pure, no I/O, no wall clock.

Each product has its own random generator seeded from (seed, product) and a book of about
`depth` levels a side, on a 0.01 tick for the USD products, with sizes of a few hundredths of
BTC (lognormal, about $2,000 a level) as the real feed shows. Order flow comes in Poisson
streams: limit orders (most near the touch, the rest refilling the book behind it), cancels,
market orders, price moves, and order events that never reach the level2 book (IOC misses,
stop triggers).

How prices move is what makes the features carry signal, as on a real book:
- **Volatility clusters.** The market switches between a calm regime and a turbulent one
  (means of 14 s and 5 s). Turbulent, makers quote wider (the spread widens from 1-3 ticks to
  tens of ticks), post smaller sizes (the book thins) and the price moves more often and
  further: the spread, depth and volatility features all read the regime.
- **Order-flow imbalance drives the mid.** A price move is a sweep of the touch and a re-quote
  of makers at the new price; its direction leans towards the heavier side of the touch
  (queue imbalance) and its rate rises with how lopsided the touch is. Market orders lean the
  same way, so trade imbalance leads the mid too; one in twenty is a large taker that sweeps
  several levels at once, a burst of matches as the real feed has.

Every full-channel event (received, open, done, match) advances the product's hidden
`sequence`, so the `sequence` shown on matches jumps the way the real feed's does while
`trade_id` steps by exactly 1.

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

# Per product and second at rate 1.0, calm: about 40 level changes and 3 trades, the real
# ballpark (Advanced Trade's BTC-USD carries about 80 level changes and 2 trades a second).
LIMIT_RATE = 24.0
CANCEL_RATE = 8.0
MARKET_RATE = 1.2
MOVE_RATE = 12.0  # candidate price moves; each happens with probability intensity / MOVE_RATE
HIDDEN_RATE = 60.0
TOTAL_RATE = LIMIT_RATE + CANCEL_RATE + MARKET_RATE + MOVE_RATE + HIDDEN_RATE
ORDER_NOTIONAL = 2_000.0  # mean order value in quote currency
# Regimes: (mean seconds in it, price moves a second, mean move as a fraction of the price,
# makers' half-spread as a fraction of the mean move (at most MAX_HALF_SPREAD ticks), size).
# With these the book's mid moves more than 0.01% (the labeler's default threshold) in about
# one 500 ms window in seven for BTC-USD, as on a lively day of the real feed.
CALM = (14.0, 0.7, 0.5e-4, 0.0, 1.0)
TURBULENT = (5.0, 3.0, 2.0e-4, 0.02, 0.4)
MAX_HALF_SPREAD = 15
IMBALANCE_LEAN = 0.3  # P(up) = 0.5 + lean * touch imbalance, for moves and market orders
IMBALANCE_INTENSITY = 1.0  # moves come (1 + this * |touch imbalance|) times as often
LARGE_TAKER, LARGE_TAKER_SHARE = 12, 0.05  # market orders 12 times the usual size, 1 in 20
MOVE_LEVELS = 10  # a price move pulls at most this many levels, and makers post them again


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
        price = float(spec.price * scale * (1 + rng.uniform(-0.01, 0.01)))
        self._price = price
        # Deep in the book levels sit a fraction of a calm move apart; near the touch, closer.
        self._gap = max(1.0, CALM[2] * price / 5)
        self._refill_mean = 25 * self._gap  # refills land within a few calm moves of the touch
        self._qty_mean = max(1.0, ORDER_NOTIONAL / spec.price * 10**spec.size_decimals)
        self.bids = _Side(is_bid=True)
        self.asks = _Side(is_bid=False)
        self.sequence = rng.randrange(10**8, 10**10)
        self.last_trade_id = rng.randrange(10**6, 10**9)
        self.recent: deque[Match] = deque(maxlen=RECENT_TRADES)
        # It opens turbulent, so a model watching it from the start sees both labels soon.
        self.turbulent = True
        self._regime_until = start_us + round(rng.expovariate(1 / TURBULENT[0]) * US)
        self._build_book(round(price))
        # A trade from before the start, for `last_match` and the market_trades snapshot.
        self._trade(start_us - rng.randrange(US, 30 * US), rng.choice(("buy", "sell")),
                    round(price), self._qty())  # fmt: skip
        self.next_us = self._schedule(start_us)

    def _build_book(self, mid: int) -> None:
        rng = self._rng
        for side, sign in ((self.bids, -1), (self.asks, 1)):
            price = mid + sign * (1 + int(rng.expovariate(1.0)))
            for level in range(self._depth):
                if price <= 0:
                    break
                side.add(price, self._qty())
                gap = 1.0 if level < 5 else self._gap
                price += sign * (1 + int(rng.expovariate(1 / gap)))

    @property
    def _regime(self) -> tuple[float, float, float, float, float]:
        return TURBULENT if self.turbulent else CALM

    def _qty(self) -> int:
        qty: float = self._qty_mean * self._regime[4] * self._rng.lognormvariate(-0.5, 1.0)
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

    def _mid(self) -> float:
        return (self.bids.nth_best(0) + self.asks.nth_best(0)) / 2

    def _imbalance(self) -> float:
        """(bid size - ask size) / (bid size + ask size) at the touch."""
        bid = self.bids.levels[self.bids.nth_best(0)]
        ask = self.asks.levels[self.asks.nth_best(0)]
        return (bid - ask) / (bid + ask)

    def _half_spread(self) -> float:
        regime = self._regime
        return min(float(MAX_HALF_SPREAD), regime[3] * regime[2] * self._price)

    def step(self) -> list[BookChange | Match]:
        """Process the next order event (at `next_us`) and schedule the one after."""
        t = self.next_us
        rng = self._rng
        while t >= self._regime_until:
            self.turbulent = not self.turbulent
            self._regime_until += max(1, round(rng.expovariate(1 / self._regime[0]) * US))
        self.next_us = self._schedule(t)
        if not (self.bids and self.asks):
            return self._requote(t, [], [])
        pick = rng.random() * TOTAL_RATE
        if pick < LIMIT_RATE:
            return self._limit(t)
        pick -= LIMIT_RATE
        if pick < CANCEL_RATE:
            return self._cancel(t)
        pick -= CANCEL_RATE
        if pick < MARKET_RATE:
            return self._market(t)
        pick -= MARKET_RATE
        if pick < MOVE_RATE:
            intensity = self._regime[1] * (1 + IMBALANCE_INTENSITY * abs(self._imbalance()))
            return self._move(t) if rng.random() * MOVE_RATE < intensity else []
        self.sequence += 2  # received + done of an order the book never shows
        return []

    def _limit(self, t: int) -> list[BookChange | Match]:
        rng = self._rng
        # The shorter side gets more of the flow, which keeps the book two-sided and deep.
        buy = rng.random() * (len(self.bids) + len(self.asks) + 2) < len(self.asks) + 1
        side = self.bids if buy else self.asks
        sign = -1 if buy else 1
        best, other = side.nth_best(0), (self.asks if buy else self.bids).nth_best(0)
        if rng.random() < 1.3 - len(side) / self._depth:
            # Behind the best: cancels and moves take levels away and these put them back.
            price = best + sign * (1 + int(rng.expovariate(1 / self._refill_mean)))
        else:
            # At the touch: makers quote their half-spread off the mid, never crossing.
            away = self._half_spread() + rng.expovariate(1 / 0.4)
            mid = self._mid()
            price = math.floor(mid - away) if buy else math.ceil(mid + away)
            price = min(price, other - 1) if buy else max(price, other + 1)
        price = max(1, price)
        self.sequence += 2  # received, open
        change = ("buy" if buy else "sell", price, side.add(price, self._qty()))
        return [BookChange(self.spec.product, t, (change,))]

    def _cancel(self, t: int) -> list[BookChange | Match]:
        rng = self._rng
        buy = rng.random() < 0.5
        side = self.bids if buy else self.asks
        if len(side) < 2:
            return []
        self.sequence += 1  # done
        if rng.random() < min(0.9, 0.5 * (len(side) / self._depth) ** 2):
            # Far levels go too; the refills in `_limit` put levels back.
            price = side.nth_best(rng.randrange(1, len(side)))
            qty = side.levels[price]
        else:
            price = side.nth_best(min(len(side) - 1, int(rng.expovariate(1 / 8))))
            qty = self._qty()
        change = ("buy" if buy else "sell", price, side.reduce(price, qty))
        return [BookChange(self.spec.product, t, (change,))]

    def _market(self, t: int) -> list[BookChange | Match]:
        rng = self._rng
        up = rng.random() < 0.5 + IMBALANCE_LEAN * self._imbalance()
        # Now and then a large taker sweeps many levels at once: a burst of matches.
        size = 2 * self._qty() * (LARGE_TAKER if rng.random() < LARGE_TAKER_SHARE else 1)
        self.sequence += 1  # received
        out, changes = self._sweep(t, "buy" if up else "sell", size)
        self.sequence += 1  # done
        return self._requote(t, out, changes, up)

    def _move(self, t: int) -> list[BookChange | Match]:
        """The price moves: a taker takes the touch, makers pull the quotes the move passes and
        quote again around the new price."""
        rng = self._rng
        up = rng.random() < 0.5 + IMBALANCE_LEAN * self._imbalance()
        ticks = 1 + int(rng.expovariate(1 / max(1.0, self._regime[2] * self._price)))
        taker = "buy" if up else "sell"
        book = self.asks if up else self.bids
        self.sequence += 1  # received
        out, changes = self._sweep(t, taker, book.levels[book.nth_best(0)])
        self.sequence += 1  # done
        shift = ticks if up else -ticks
        limit = book.nth_best(0) + shift
        maker = "sell" if up else "buy"
        pulled: list[tuple[int, int]] = []
        while (
            len(book) > 1
            and len(pulled) < MOVE_LEVELS
            and (book.nth_best(0) < limit if up else book.nth_best(0) > limit)
        ):
            price = book.nth_best(0)
            pulled.append((price, book.levels[price]))
            self.sequence += 1  # done: the maker pulls its quote
            changes.append((maker, price, book.reduce(price, book.levels[price])))
        for price, qty in pulled:
            # ... and the nearest post again as far from the new price: the book keeps depth.
            self.sequence += 2  # received, open
            changes.append((maker, price + shift, book.add(price + shift, qty)))
        return self._requote(t, out, changes, up)

    def _requote(
        self,
        t: int,
        out: list[BookChange | Match],
        changes: list[tuple[str, int, int]],
        up: bool = True,
    ) -> list[BookChange | Match]:
        """Makers quote an empty or far side again at their half-spread from the other; after
        a move down (`up` False) the asks follow the bids, else the bids follow the asks."""
        rng = self._rng
        sides = [(self.bids, self.asks, "buy", -1), (self.asks, self.bids, "sell", 1)]
        for side, other, name, sign in sides if up else sides[::-1]:
            if not other:
                continue
            near = other.nth_best(0) + sign * (1 + round(2 * self._half_spread()))
            if side and (side.nth_best(0) >= near if side.is_bid else side.nth_best(0) <= near):
                continue
            price = max(1, near + sign * int(rng.expovariate(1.0)))
            self.sequence += 2  # received, open
            changes.append((name, price, side.add(price, self._qty())))
        if changes:
            out.append(BookChange(self.spec.product, t, tuple(changes)))
        return out

    def _sweep(
        self, t: int, taker: str, qty: int
    ) -> tuple[list[BookChange | Match], list[tuple[str, int, int]]]:
        """Fill `qty` against the other side, never emptying it; return matches and changes."""
        book = self.asks if taker == "buy" else self.bids
        maker = "sell" if taker == "buy" else "buy"
        matches: list[BookChange | Match] = []
        changes: list[tuple[str, int, int]] = []
        taker_id = self._order_id()
        while qty and len(book) > 1:
            best = book.nth_best(0)
            fill = min(qty, book.levels[best])
            left = book.reduce(best, fill)
            matches.append(self._trade(t, maker, best, fill, taker_id))
            if not left:
                self.sequence += 1  # the maker order is done
            changes.append((maker, best, left))
            qty -= fill
        return matches, changes

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
