"""Local exchange throughput: how far above the real feed's rates `quotewatch simulate` can go.

Measured side by side in one run, on one core:

- the market model alone (`Market.advance`), in simulated seconds per wall second;
- the market plus Exchange rendering (`level2`, one `l2update` per change, plus `matches` and
  `heartbeat`) and plus Advanced rendering (`level2`, `market_trades`, `heartbeats`);
- the peer: `json.dumps` of the same l2update messages, pre-built (the floor of any renderer);
- over loopback: frames per second one websockets client receives from `LocalExchange` at a
  high `--speed`, against a bare websockets server sending pre-rendered frames.

Items per CPU second are market events for the model, frames for the renderers (Advanced frames
batch 50 ms of changes) and messages for the peer.

Run: ``uv run --locked python benchmarks/bench_simulate.py [--seconds S]``. Target: the
simulator at 10x the default rate keeps up with real time with room to spare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable

from quotewatch.simulate.advanced_protocol import AdvancedSession
from quotewatch.simulate.exchange_protocol import ExchangeSession
from quotewatch.simulate.market import BookChange, Market
from quotewatch.simulate.server import LocalExchange
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

START_US = 1_767_225_600_000_000
PRODUCTS = ("BTC-USD", "ETH-USD")
AUTH = {"signature": "s", "key": "k", "passphrase": "p", "timestamp": "1"}
SUBSCRIBE = json.dumps({"type": "subscribe", "product_ids": list(PRODUCTS),
                        "channels": ["level2", "matches", "heartbeat"], **AUTH})  # fmt: skip


def _timed(func: Callable[[], int]) -> tuple[float, int]:
    started = time.process_time()
    count = func()
    return time.process_time() - started, count


def market_only(seconds: float, rate: float) -> int:
    market = Market(PRODUCTS, seed=1, start_us=START_US, rate=rate)
    n = 0
    for step in range(1, int(seconds * 20) + 1):
        n += len(market.advance(START_US + step * 50_000))
    return n


def with_exchange(seconds: float, rate: float) -> int:
    market = Market(PRODUCTS, seed=1, start_us=START_US, rate=rate)
    session = ExchangeSession(market, random.Random(1), auth_secret=None)
    session.handle(SUBSCRIBE)
    n = 0
    for step in range(1, int(seconds * 20) + 1):
        n += len(session.on_events(market.advance(START_US + step * 50_000)))
    return n


def with_advanced(seconds: float, rate: float) -> int:
    market = Market(PRODUCTS, seed=1, start_us=START_US, rate=rate)
    session = AdvancedSession(market, random.Random(1), heartbeat_base=1000)
    for channel in ("level2", "market_trades", "heartbeats"):
        session.handle(json.dumps({"type": "subscribe", "product_ids": list(PRODUCTS),
                                   "channel": channel}))  # fmt: skip
    n = 0
    for step in range(1, int(seconds * 20) + 1):
        frames = session.on_events(market.advance(START_US + step * 50_000))
        n += len([session.number(f).text for f in frames])
    return n


def peer_dumps(seconds: float, rate: float) -> tuple[float, int]:
    """json.dumps of the same l2update messages, built beforehand (not timed)."""
    market = Market(PRODUCTS, seed=1, start_us=START_US, rate=rate)
    spec = market.products["BTC-USD"].spec
    bodies = [
        {"type": "l2update", "product_id": e.product,
         "changes": [[s, spec.price_str(p), spec.size_str(q)] for s, p, q in e.changes],
         "time": "2026-01-01T00:00:00.000000Z"}
        for e in market.advance(START_US + int(seconds * 1e6)) if isinstance(e, BookChange)
    ]  # fmt: skip
    started = time.process_time()
    for body in bodies:
        json.dumps(body, separators=(",", ":"))
    return time.process_time() - started, len(bodies)


async def wire_local_exchange(seconds: float, speed: float) -> int:
    ex = LocalExchange(PRODUCTS, seed=1, rate=10.0, speed=speed, max_pending=10_000_000)
    async with ex, connect(ex.exchange_url, max_size=None) as ws:
        await ws.send(SUBSCRIBE)
        return await _count(ws, seconds)


async def wire_peer(seconds: float) -> int:
    frame = json.dumps({"type": "l2update", "product_id": "BTC-USD",
                        "changes": [["buy", "65000.01", "0.12345678"]],
                        "time": "2026-01-01T00:00:00.000000Z"})  # fmt: skip

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(frame)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            return await _count(ws, seconds)


async def _count(ws: object, seconds: float) -> int:
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await ws.recv()  # type: ignore[attr-defined]
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds per row")
    parser.add_argument("--wire-seconds", type=float, default=3.0, help="wall seconds on wire")
    args = parser.parse_args()
    s = args.seconds
    rows = []
    for rate in (1.0, 10.0):
        for name, func in (("market model", market_only), ("+ Exchange render", with_exchange),
                           ("+ Advanced render", with_advanced)):  # fmt: skip
            cpu, count = _timed(lambda f=func, r=rate: f(s, r))  # type: ignore[misc]
            rows.append((f"{name}, rate {rate:g}", s / cpu, count / cpu))
        cpu, count = peer_dumps(s, rate)
        rows.append((f"peer: json.dumps l2updates, rate {rate:g}", s / cpu, count / cpu))
    print(f"{len(PRODUCTS)} products, {s:g} simulated s per row, CPU time of this process")
    print(f"{'path':44} {'sim s / CPU s':>14} {'items / CPU s':>14}")
    for name, speed, per_s in rows:
        print(f"{name:44} {speed:14.1f} {per_s:14,.0f}")
    wall = args.wire_seconds
    peer = asyncio.run(wire_peer(wall)) / wall
    produced_per_sim_s = with_exchange(10.0, 10.0) / 10.0
    print(f"\nloopback, one client, {wall:g} s each (wall clock), rate 10, level2 + matches")
    print(f"{'server':44} {'frames / s':>14} {'vs peer':>9} {'of produced':>12}")
    for speed in (10.0, 30.0):
        got = asyncio.run(wire_local_exchange(wall, speed)) / wall
        share = got / (produced_per_sim_s * speed)
        name = f"LocalExchange, {10 * speed:g}x the default flow"
        print(f"{name:44} {got:14,.0f} {got / peer:9.2f} {share:12.0%}")
    print(f"{'peer: bare websockets, pre-rendered frame':44} {peer:14,.0f} {1.0:9.2f}")


if __name__ == "__main__":
    main()
