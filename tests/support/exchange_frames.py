"""Exchange-feed frames from the simulator's market model, without a socket: for pipeline tests
and benchmarks that need realistic traffic, fast and deterministic."""

from __future__ import annotations

import json
import random

from quotewatch.simulate.exchange_protocol import ExchangeSession
from quotewatch.simulate.market import Market

START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def exchange_frames(
    products: tuple[str, ...] = ("BTC-USD",),
    *,
    seconds: float = 60.0,
    rate: float = 1.0,
    seed: int = 7,
    channel: str = "level2",
    depth: int = 200,
) -> list[tuple[str, int]]:
    """(frame text, receive time µs) pairs: acks, snapshots, then `seconds` of market traffic.

    `channel` "level2" sends one l2update per book change; "level2_batch" one per 50 ms.
    """
    market = Market(products, seed=seed, start_us=START_US, depth=depth, rate=rate)
    session = ExchangeSession(market, random.Random(seed), auth_secret=None)
    subscribe = {
        "type": "subscribe",
        "product_ids": list(products),
        "channels": [channel, "matches", "heartbeat"],
        "signature": "s", "key": "k", "passphrase": "p", "timestamp": "1",
    }  # fmt: skip
    out = [(f.text, START_US) for f in session.handle(json.dumps(subscribe))]
    step = 50_000
    t = START_US
    end = START_US + int(seconds * 1_000_000)
    while t < end:
        t += step
        out.extend((f.text, t) for f in session.on_events(market.advance(t)))
    return out
