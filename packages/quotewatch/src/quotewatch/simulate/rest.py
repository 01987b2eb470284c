"""The local exchange's REST trades endpoint, `GET /products/{product_id}/trades`, as Coinbase
Exchange serves it (see `coinbase-protocol.md`, "REST: recovering trades").

- Newest trades first: `[{"time", "trade_id", "price", "size", "side"}]`, `side` the maker's.
- Cursor pagination by trade id: `after=ID` is the page of trades older than ID, `before=ID` the
  page of trades newer than ID (closest to ID first in id order, still listed newest first);
  `limit` 1 to 1000, 1000 by default. `CB-BEFORE` and `CB-AFTER` carry the newest and oldest id
  of the page, the cursors for the next pages.
- Rate-limited per client address like the public endpoints (a token bucket, 10 requests/s with
  bursts of 15): beyond it, 429 `{"message": "Public rate limit exceeded"}`.

Every trade the market makes is kept, including those `--drop-matches` drops from the
websocket: a drop there is a lost message, not a trade that never happened.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Response

from quotewatch.simulate.faults import FaultConfigError
from quotewatch.simulate.market import Event, Market, Match
from quotewatch.simulate.timefmt import iso_us

TRADES_PREFIX = "/products/"
MAX_LIMIT = 1000
RATE_PER_S = 10.0
BURST = 15.0
# How many trades per product the history keeps: hours of simulated trading at the demo's rate.
HISTORY = 1_000_000


@dataclass(frozen=True)
class RestFaults:
    """Faults of the REST endpoint: per-request probabilities of a 5xx and of an injected 429
    (with `Retry-After`), and a delay added to every response."""

    errors: float = 0.0
    throttle: float = 0.0
    delay: float = 0.0

    def __post_init__(self) -> None:
        for name in ("errors", "throttle"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise FaultConfigError(
                    f"rest {name} is a probability in [0, 1], got {getattr(self, name)!r}"
                )
        if not 0.0 <= self.delay <= 60.0:
            raise FaultConfigError(f"rest delay must be 0 to 60 seconds, got {self.delay!r}")


class TradeHistory:
    """Every trade of each product, oldest first, for the REST endpoint."""

    def __init__(self, market: Market) -> None:
        self._market = market
        self._ids: dict[str, list[int]] = {}
        self._matches: dict[str, list[Match]] = {}

    def record(self, events: Iterable[Event]) -> None:
        """Keep the matches among `events` (call before any are dropped)."""
        for event in events:
            if isinstance(event, Match):
                ids = self._ids.setdefault(event.product, [])
                matches = self._matches.setdefault(event.product, [])
                ids.append(event.trade_id)
                matches.append(event)
                if len(ids) > HISTORY:
                    del ids[: len(ids) - HISTORY]
                    del matches[: len(matches) - HISTORY]

    def trade_ids(self, product: str) -> list[int]:
        """Every trade id of `product` kept, oldest first."""
        return list(self._ids.get(product, ()))

    def page(
        self, product: str, *, after: int | None, before: int | None, limit: int
    ) -> list[dict[str, object]]:
        """One page, newest first: older than `after`, newer than `before`, else the newest."""
        ids = self._ids.get(product)
        if not ids:
            return []
        if after is not None:
            end = bisect_left(ids, after)
            start = max(0, end - limit)
        elif before is not None:
            start = bisect_left(ids, before + 1)
            end = min(len(ids), start + limit)
        else:
            end = len(ids)
            start = max(0, end - limit)
        spec = self._market.products[product].spec
        return [
            {
                "time": iso_us(m.time_us),
                "trade_id": m.trade_id,
                "price": spec.price_str(m.price),
                "size": spec.size_str(m.size),
                "side": m.maker_side,
            }
            for m in reversed(self._matches[product][start:end])
        ]


class _Bucket:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._tokens = BURST
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(BURST, self._tokens + (now - self._at) * RATE_PER_S)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class TradesEndpoint:
    """Answers `/products/{id}/trades` requests from the history, with the rate limit and faults."""

    def __init__(
        self,
        history: TradeHistory,
        products: Iterable[str],
        faults: RestFaults,
        seed: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.history = history
        self._products = frozenset(products)
        self._faults = faults
        self._rng = random.Random(f"quotewatch-simulate:{seed}:rest")
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self.responses: Counter[int] = Counter()  # by status code

    @staticmethod
    def handles(path: str) -> bool:
        """Whether `path` is a REST request for this endpoint."""
        return path.startswith(TRADES_PREFIX)

    async def respond(self, path: str, client: str) -> Response:
        """The response to one GET of `path` from address `client`."""
        if self._faults.delay:
            await asyncio.sleep(self._faults.delay)
        response = self._answer(path, client)
        self.responses[response.status_code] += 1
        return response

    def _answer(self, path: str, client: str) -> Response:
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(self._clock)
        if not bucket.take():
            return _json(HTTPStatus.TOO_MANY_REQUESTS, {"message": "Public rate limit exceeded"})
        if self._faults.throttle and self._rng.random() < self._faults.throttle:
            return _json(
                HTTPStatus.TOO_MANY_REQUESTS,
                {"message": "Public rate limit exceeded"},
                {"Retry-After": "1"},
            )
        if self._faults.errors and self._rng.random() < self._faults.errors:
            return _json(HTTPStatus.SERVICE_UNAVAILABLE, {"message": "injected error"})
        url = urlsplit(path)
        parts = url.path.split("/")  # "", "products", id, "trades"
        if len(parts) != 4 or parts[3] != "trades" or parts[2] not in self._products:
            return _json(HTTPStatus.NOT_FOUND, {"message": "NotFound"})
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            limit = int(query.get("limit", MAX_LIMIT))
            after = int(query["after"]) if "after" in query else None
            before = int(query["before"]) if "before" in query else None
        except ValueError:
            return _json(HTTPStatus.BAD_REQUEST, {"message": "Invalid cursor or limit"})
        if not 1 <= limit <= MAX_LIMIT:
            return _json(HTTPStatus.BAD_REQUEST, {"message": "Invalid limit"})
        rows = self.history.page(parts[2], after=after, before=before, limit=limit)
        headers = {}
        if rows:
            headers = {"CB-BEFORE": str(rows[0]["trade_id"]), "CB-AFTER": str(rows[-1]["trade_id"])}
        return _json(HTTPStatus.OK, rows, headers)


def _json(status: HTTPStatus, body: object, extra: dict[str, str] | None = None) -> Response:
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Connection", "close"),
            *(extra or {}).items(),
        ]
    )
    return Response(status.value, status.phrase, headers, data)
