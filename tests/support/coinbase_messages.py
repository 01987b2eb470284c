"""Real-shaped messages of both feeds (from notes/coinbase-protocol.md), for the ingest tests."""

from __future__ import annotations

from typing import Any

T = "2022-08-04T15:25:05.010758Z"

EXCHANGE: dict[str, dict[str, Any]] = {
    "snapshot": {
        "type": "snapshot",
        "product_id": "BTC-USD",
        "bids": [["22356.27", "1.5"], ["22356.20", "0.25"], ["22350.00", "3"]],
        "asks": [["22356.30", "1.0"], ["22356.35", "0.4"], ["22360.00", "2"]],
    },
    "l2update": {
        "type": "l2update",
        "product_id": "BTC-USD",
        "changes": [["buy", "22356.27", "0.00000000"], ["sell", "22356.31", "1.0"]],
        "time": T,
    },
    "match": {
        "type": "match",
        "trade_id": 1568268,
        "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
        "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
        "side": "sell",
        "size": "450",
        "price": "22356.30",
        "product_id": "BTC-USD",
        "sequence": 201390075,
        "time": "2021-04-17T16:43:37.121358Z",
    },
    "heartbeat": {
        "type": "heartbeat",
        "sequence": 90,
        "last_trade_id": 1568268,
        "product_id": "BTC-USD",
        "time": T,
    },
    "subscriptions": {
        "type": "subscriptions",
        "channels": [{"name": "level2_batch", "product_ids": ["BTC-USD"]}, "heartbeat"],
    },
    "error": {"type": "error", "message": "Failed to subscribe", "reason": "level2 requires auth"},
}

ADVANCED: dict[str, dict[str, Any]] = {
    "l2_snapshot": {
        "channel": "l2_data",
        "timestamp": "2023-02-09T20:32:50.714964855Z",
        "sequence_num": 0,
        "events": [
            {
                "type": "snapshot",
                "product_id": "BTC-USD",
                "updates": [
                    {"side": "bid", "event_time": T, "price_level": "65062.5",
                     "new_quantity": "0.00583"},
                    {"side": "bid", "event_time": T, "price_level": "65060", "new_quantity": "1"},
                    {"side": "offer", "event_time": T, "price_level": "65063.1",
                     "new_quantity": "2.5"},
                ],
            }
        ],
    },
    "l2_update": {
        "channel": "l2_data",
        "timestamp": "2023-02-09T20:32:50.814964855Z",
        "sequence_num": 1,
        "events": [
            {
                "type": "update",
                "product_id": "BTC-USD",
                "updates": [
                    {"side": "offer", "event_time": T, "price_level": "65063.1",
                     "new_quantity": "0"},
                    {"side": "bid", "event_time": T, "price_level": "65062.9",
                     "new_quantity": "0.1"},
                ],
            }
        ],
    },
    "market_trades": {
        "channel": "market_trades",
        "timestamp": "2023-02-09T20:32:51.014964855Z",
        "sequence_num": 2,
        "events": [
            {
                "type": "update",
                "trades": [
                    {"product_id": "BTC-USD", "trade_id": "1068572091", "price": "65083.67",
                     "size": "0.01034361", "time": T, "side": "SELL"},
                ],
            }
        ],
    },
    "heartbeats": {
        "channel": "heartbeats",
        "timestamp": "2023-06-23T20:31:56.121961769Z",
        "sequence_num": 3,
        "events": [
            {
                "current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
                "heartbeat_counter": 41691,
            }
        ],
    },
    "subscriptions": {
        "channel": "subscriptions",
        "timestamp": "2023-02-09T20:32:50.714964855Z",
        "sequence_num": 4,
        "events": [{"subscriptions": {"level2": ["BTC-USD"], "heartbeats": ["heartbeats"]}}],
    },
}  # fmt: skip
