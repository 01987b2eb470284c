"""Coinbase Exchange subscriptions: what to send on connect and to resync a product's book."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quotewatch.ingest.auth import ExchangeCredentials

EXCHANGE_URL = "wss://ws-feed.exchange.coinbase.com"


class ExchangeSubscriptions:
    """``level2_batch`` + ``matches`` + ``heartbeat`` without credentials; with credentials the
    unbatched ``level2``, signed. The signed messages are never logged."""

    feed = "exchange"
    default_url = EXCHANGE_URL

    def __init__(self, credentials: ExchangeCredentials | None = None) -> None:
        self._credentials = credentials
        self.book_channel = "level2" if credentials is not None else "level2_batch"

    def __repr__(self) -> str:
        return f"ExchangeSubscriptions(book_channel={self.book_channel!r})"

    def subscribe(self, products: Sequence[str]) -> list[dict[str, Any]]:
        """One subscribe message for every channel."""
        msg: dict[str, Any] = {
            "type": "subscribe",
            "product_ids": list(products),
            "channels": [self.book_channel, "heartbeat", {"name": "matches",
                         "product_ids": list(products)}],
        }  # fmt: skip
        return [self._signed(msg)]

    def resync(self, products: Sequence[str]) -> list[dict[str, Any]]:
        """Unsubscribe and resubscribe the book channel: the server answers with snapshots."""
        channel = [{"name": self.book_channel, "product_ids": list(products)}]
        return [
            {"type": "unsubscribe", "channels": channel},
            self._signed({"type": "subscribe", "channels": channel}),
        ]

    def _signed(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self._credentials is None:
            return msg
        return {**msg, **self._credentials.subscribe_fields()}
