"""Coinbase Advanced Trade subscriptions: one channel per subscribe message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ADVANCED_URL = "wss://advanced-trade-ws.coinbase.com"


class AdvancedSubscriptions:
    """``level2``, ``market_trades`` and ``heartbeats`` (which keeps quiet channels open)."""

    feed = "advanced"
    default_url = ADVANCED_URL

    def __repr__(self) -> str:
        return "AdvancedSubscriptions()"

    def subscribe(self, products: Sequence[str]) -> list[dict[str, Any]]:
        """One subscribe message per channel."""
        return [
            {"type": "subscribe", "product_ids": list(products), "channel": channel}
            for channel in ("heartbeats", "level2", "market_trades")
        ]

    def resync(self, products: Sequence[str]) -> list[dict[str, Any]]:
        """Unsubscribe and resubscribe level2: the server answers with fresh snapshots."""
        return [
            {"type": "unsubscribe", "product_ids": list(products), "channel": "level2"},
            {"type": "subscribe", "product_ids": list(products), "channel": "level2"},
        ]
