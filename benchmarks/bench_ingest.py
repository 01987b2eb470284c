"""Ingest throughput: a recorded level2 stream through parse -> book -> gap tracker.

Generates realistic streams (Exchange ``l2update`` and Advanced Trade ``l2_data`` frames with
1-3 changes each, on books of a few thousand levels per side, plus matches / trades and
heartbeats), writes them as a recording and measures, side by side on one core:

- ``json.loads`` alone (the floor every path pays);
- ``parse_frame`` alone;
- ``FeedSession.handle_frame`` (parse + book + gap trackers: the live path);
- `quotewatch.ingest.replay.replay` of the recording file at ``--speed 0`` (the replay path);
- a peer: the same session whose book is read with a full sort after every update (what
  ``top(n)`` would cost without the sorted price lists).

Run: ``uv run --locked python benchmarks/bench_ingest.py [--messages N]``. Target: >= 50,000
messages/s for the replay path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("QW_METRICS_DISABLED", "0")

from quotewatch.book import OrderBook
from quotewatch.events import Event
from quotewatch.ingest.parser import Feed, parse_frame
from quotewatch.ingest.replay import replay
from quotewatch.ingest.session import Consumer, FeedSession

LEVELS = 3000
PRODUCT = "BTC-USD"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _iso(us: int) -> str:
    return (START + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def exchange_stream(n: int, rng: random.Random) -> list[str]:
    """A snapshot, then l2updates with 1-3 changes, a match every 40 and a heartbeat every 200."""
    mid = 6_000_000  # cents
    bids = [[f"{(mid - i) / 100:.2f}", "0.50000000"] for i in range(1, LEVELS + 1)]
    asks = [[f"{(mid + i) / 100:.2f}", "0.50000000"] for i in range(1, LEVELS + 1)]
    frames = [json.dumps({"type": "snapshot", "product_id": PRODUCT, "bids": bids, "asks": asks})]
    trade_id = 1000
    for k in range(n - 1):
        t = _iso(k * 1000)
        if k % 200 == 199:
            frames.append(json.dumps({"type": "heartbeat", "sequence": k, "last_trade_id": trade_id,
                                      "product_id": PRODUCT, "time": t}))  # fmt: skip
        elif k % 40 == 39:
            trade_id += 1
            frames.append(json.dumps({
                "type": "match", "trade_id": trade_id, "maker_order_id": "m", "taker_order_id": "t",
                "side": rng.choice(("buy", "sell")), "size": "0.01000000",
                "price": f"{mid / 100:.2f}", "product_id": PRODUCT, "sequence": 10 * k, "time": t,
            }))  # fmt: skip
        else:
            changes = []
            for _ in range(rng.randint(1, 3)):
                side = rng.choice(("buy", "sell"))
                offset = rng.randint(1, LEVELS + 200)
                price = (mid - offset) if side == "buy" else (mid + offset)
                size = "0.00000000" if rng.random() < 0.3 else f"{rng.uniform(0.01, 5):.8f}"
                changes.append([side, f"{price / 100:.2f}", size])
            frames.append(json.dumps({"type": "l2update", "product_id": PRODUCT,
                                      "changes": changes, "time": t}))  # fmt: skip
    return frames


def advanced_stream(n: int, rng: random.Random) -> list[str]:
    """The same market as Advanced Trade envelopes with a contiguous sequence_num."""
    mid = 6_000_000
    t0 = _iso(0)
    snap = [{"side": s, "event_time": t0, "price_level": f"{(mid + d * i) / 100:.2f}",
             "new_quantity": "0.5"} for s, d in (("bid", -1), ("offer", 1))
            for i in range(1, LEVELS + 1)]  # fmt: skip
    frames = [json.dumps({"channel": "l2_data", "timestamp": t0, "sequence_num": 0,
                          "events": [{"type": "snapshot", "product_id": PRODUCT,
                                      "updates": snap}]})]  # fmt: skip
    for k in range(1, n):
        t = _iso(k * 1000)
        if k % 200 == 0:
            events: list[Any] = [{"current_time": t, "heartbeat_counter": k}]
            channel = "heartbeats"
        else:
            updates = []
            for _ in range(rng.randint(1, 3)):
                side = rng.choice(("bid", "offer"))
                offset = rng.randint(1, LEVELS + 200)
                price = (mid - offset) if side == "bid" else (mid + offset)
                qty = "0" if rng.random() < 0.3 else f"{rng.uniform(0.01, 5):.8f}"
                level = f"{price / 100:.2f}"
                updates.append({"side": side, "event_time": t, "price_level": level,
                                "new_quantity": qty})  # fmt: skip
            events = [{"type": "update", "product_id": PRODUCT, "updates": updates}]
            channel = "l2_data"
        frames.append(json.dumps({"channel": channel, "timestamp": t, "sequence_num": k,
                                  "events": events}))  # fmt: skip
    return frames


def measure(run: Callable[[], int]) -> float:
    """Best of three: messages per CPU second of this process (the machine may be shared)."""
    best = 0.0
    for _ in range(3):
        started = time.process_time()
        count = run()
        best = max(best, count / (time.process_time() - started))
    return best


def bench(feed: Feed, frames: list[str], tmp: Path) -> list[tuple[str, float]]:
    recording = tmp / f"{feed}.jsonl"
    with recording.open("w") as f:
        for i, frame in enumerate(frames):
            f.write(f'{{"ts":{1767225600 + i / 1000:.6f},"msg":{frame}}}\n')

    def loads() -> int:
        for frame in frames:
            json.loads(frame)
        return len(frames)

    def parse() -> int:
        for frame in frames:
            parse_frame(frame, 0, feed)
        return len(frames)

    def session_path(consumers: list[Consumer] | None = None) -> int:
        session = FeedSession(feed, products=[PRODUCT], consumers=consumers or [])
        for frame in frames:
            session.handle_frame(frame, 0)
        return len(frames)

    def replay_path() -> int:
        session = FeedSession(feed, connection_label="*")
        return asyncio.run(replay(recording, session)).frames

    peer_frames = frames[:2000]

    def full_sort_peer() -> int:
        def top_by_sorting(event: Event, book: OrderBook | None) -> None:
            if book is None:
                return
            bids = dict(book._bids.sizes)
            asks = dict(book._asks.sizes)
            sorted(bids, reverse=True)[:10]
            sorted(asks)[:10]

        session = FeedSession(feed, products=[PRODUCT], consumers=[top_by_sorting])
        for frame in peer_frames:  # a slice: sorting a few thousand levels per event is slow
            session.handle_frame(frame, 0)
        return len(peer_frames)

    def with_top10() -> int:
        def top(event: Event, book: OrderBook | None) -> None:
            if book is not None:
                book.top(10)

        session = FeedSession(feed, products=[PRODUCT], consumers=[top])
        for frame in frames:
            session.handle_frame(frame, 0)
        return len(frames)

    return [
        ("json.loads only", measure(loads)),
        ("parse_frame", measure(parse)),
        ("session: parse+book+tracker", measure(session_path)),
        ("replay of the recording file", measure(replay_path)),
        ("session + top(10) per event", measure(with_top10)),
        ("peer: session + full sort per event", measure(full_sort_peer)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(42)
    print(f"{args.messages:,} messages per stream, books of {LEVELS:,} levels per side, "
          "one core, CPU time")  # fmt: skip
    print(f"{'feed':9} {'path':38} {'msg/s':>10} {'us/msg':>8} {'vs json':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for feed, make in ((Feed.EXCHANGE, exchange_stream), (Feed.ADVANCED, advanced_stream)):
            frames = make(args.messages, rng)
            rows = bench(feed, frames, Path(tmp))
            floor = rows[0][1]
            for name, rate in rows:
                print(f"{feed.value:9} {name:38} {rate:10,.0f} {1e6 / rate:8.2f} "
                      f"{rate / floor:8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
