"""Coinbase Exchange's REST trades endpoint, `GET /products/{product_id}/trades`: one page of
trades per request, newest first, paged by trade id (`after=ID`: older than ID).

`TradesApi.get` never raises on the server's or the network's failures: it returns a `Reply`
whose `status` is the HTTP status code, or `"error"` when no response came, so the caller
decides what to retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from quotewatch.events import Trade
from quotewatch.ingest import fields
from quotewatch.ingest.invalid import BadMessage

EXCHANGE_REST_URL = "https://api.exchange.coinbase.com"
PAGE_LIMIT = 1000
TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Reply:
    """One request's outcome: `status` ("200", "429", ... or "error"), the trades of a 200,
    and `retry_after` seconds when the server said how long to wait."""

    status: str
    trades: tuple[Trade, ...] = ()
    retry_after: float | None = None
    detail: str = ""


class TradesApi:
    """A client of the REST trades endpoint at `base_url` (production by default)."""

    def __init__(self, base_url: str = EXCHANGE_REST_URL, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"User-Agent": "quotewatch-backfill"},
        )

    def __repr__(self) -> str:
        return f"TradesApi({self.base_url!r})"

    def get(self, product: str, after: int, received_us: int) -> Reply:
        """The page of `product`'s trades older than id `after` (at most 1000)."""
        try:
            response = self._client.get(
                f"/products/{product}/trades", params={"after": after, "limit": PAGE_LIMIT}
            )
        except httpx.HTTPError as exc:
            return Reply("error", detail=f"{type(exc).__name__}: {exc}")
        status = str(response.status_code)
        if response.status_code != 200:
            return Reply(
                status,
                retry_after=_seconds(response.headers.get("Retry-After")),
                detail=response.text[:200],
            )
        try:
            trades = tuple(_trade(product, item, received_us) for item in response.json())
        except (BadMessage, ValueError, TypeError, AttributeError) as exc:
            return Reply("bad_body", detail=f"{type(exc).__name__}: {exc}"[:200])
        return Reply(status, trades)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the caller's backoff applies


def _trade(product: str, item: dict[str, Any], received_us: int) -> Trade:
    # `side` is the maker's, as on the websocket: the taker took the other side.
    maker = fields.text(item, "side")
    if maker not in ("buy", "sell"):
        raise ValueError(f"side {maker[:20]!r} is not buy or sell")
    return Trade(
        product=product,
        trade_id=fields.integer(fields.require(item, "trade_id"), "trade_id"),
        price=fields.price(fields.require(item, "price")),
        size=fields.trade_size(fields.require(item, "size")),
        taker_side="sell" if maker == "buy" else "buy",
        time_us=fields.time_us(fields.require(item, "time")),
        received_us=received_us,
        source="rest",
    )
