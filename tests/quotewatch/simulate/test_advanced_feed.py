"""The Coinbase Advanced Trade feed of the local exchange, over real websockets on loopback."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from quotewatch.simulate.faults import Faults
from quotewatch.simulate.server import LocalExchange
from support.simulate import FIXED_START_US, drain, recv_for, recv_json, send, until_closed
from websockets.asyncio.client import connect

pytestmark = pytest.mark.timeout(30)

ENVELOPE = {"channel", "timestamp", "sequence_num", "events"}
NS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def _exchange(**kw: Any) -> LocalExchange:
    options: dict[str, Any] = {
        "products": ("BTC-USD", "ETH-USD"),
        "seed": 11,
        "depth": 200,
        "start_time_us": FIXED_START_US,
        "speed": 12.0,
    }
    options.update(kw)
    return LocalExchange(**options)


async def _subscribe_all(ws: Any, products: list[str]) -> None:
    for channel in ("level2", "market_trades", "heartbeats"):
        await send(ws, {"type": "subscribe", "product_ids": products, "channel": channel})


def test_sequence_num_counts_every_frame_from_zero_across_channels() -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with _exchange(rate=2.0) as ex, connect(ex.advanced_url) as ws:
            await _subscribe_all(ws, ["BTC-USD", "ETH-USD"])
            return [json.loads(t) for t in await recv_for(ws, 0.5)]

    frames = _run(scenario())
    assert [f["sequence_num"] for f in frames] == list(range(len(frames)))
    assert all(set(f) == ENVELOPE for f in frames)  # client_id is absent
    assert all(NS_TIME.match(f["timestamp"]) for f in frames)
    channels = {f["channel"] for f in frames}
    assert channels == {"subscriptions", "l2_data", "market_trades", "heartbeats"}
    acks = [f for f in frames if f["channel"] == "subscriptions"]
    assert acks[-1]["events"] == [{"subscriptions": {
        "level2": ["BTC-USD", "ETH-USD"],
        "market_trades": ["BTC-USD", "ETH-USD"],
        "heartbeats": ["BTC-USD", "ETH-USD"],
    }}]  # fmt: skip


def test_level2_spells_the_ask_side_offer_and_replays_to_the_next_snapshot() -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with _exchange(rate=3.0) as ex, connect(ex.advanced_url) as ws:
            sub = {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"}
            await send(ws, sub)
            frames = [json.loads(t) for t in await recv_for(ws, 0.4)]
            ex.pause()
            await send(ws, sub)
            return frames + [json.loads(t) for t in await drain(ws)]

    frames = [f for f in _run(scenario()) if f["channel"] == "l2_data"]
    snapshots = [i for i, f in enumerate(frames) if f["events"][0]["type"] == "snapshot"]
    assert len(snapshots) == 2
    first, second = (frames[i]["events"][0] for i in snapshots)
    sides = {u["side"] for u in first["updates"]}
    assert sides == {"bid", "offer"}
    book = {(u["side"], Decimal(u["price_level"])): Decimal(u["new_quantity"])
            for u in first["updates"]}  # fmt: skip
    changes = 0
    for frame in frames[snapshots[0] + 1 : snapshots[1]]:
        (event,) = frame["events"]
        assert event["type"] == "update"
        assert event["product_id"] == "BTC-USD"
        for u in event["updates"]:
            assert set(u) == {"side", "event_time", "price_level", "new_quantity"}
            assert u["side"] in ("bid", "offer")
            changes += 1
            key = (u["side"], Decimal(u["price_level"]))
            if Decimal(u["new_quantity"]) == 0:
                book.pop(key, None)
            else:
                book[key] = Decimal(u["new_quantity"])
    assert changes > 50
    again = {(u["side"], Decimal(u["price_level"])): Decimal(u["new_quantity"])
             for u in second["updates"]}  # fmt: skip
    assert book == again


def test_market_trades_are_batched_with_string_ids_and_upper_case_maker_sides() -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with _exchange(rate=3.0) as ex, connect(ex.advanced_url) as ws:
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"],
                            "channel": "market_trades"})  # fmt: skip
            return [json.loads(t) for t in await recv_for(ws, 0.5)]

    frames = [f for f in _run(scenario()) if f["channel"] == "market_trades"]
    assert frames[0]["events"][0]["type"] == "snapshot"
    updates = frames[1:]
    assert len(updates) >= 3
    ids: list[int] = []
    for frame in frames:
        for trade in frame["events"][0]["trades"]:
            assert set(trade) == {"product_id", "trade_id", "price", "size", "time", "side"}
            assert isinstance(trade["trade_id"], str)
            assert trade["side"] in ("BUY", "SELL")
            ids.append(int(trade["trade_id"]))
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    # batches close on the 250 ms grid of simulated time
    assert all(f["timestamp"][20:23] in ("000", "250", "500", "750") for f in updates)


def test_heartbeats_count_uptime_not_from_zero() -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with _exchange() as ex, connect(ex.advanced_url) as ws:
            await send(ws, {"type": "subscribe", "channel": "heartbeats"})
            return [json.loads(t) for t in await recv_for(ws, 0.5)]

    frames = _run(scenario())
    assert frames[0]["channel"] == "subscriptions"
    assert frames[0]["events"] == [{"subscriptions": {"heartbeats": ["heartbeats"]}}]
    beats = [f["events"][0] for f in frames if f["channel"] == "heartbeats"]
    assert len(beats) >= 4
    counters = [b["heartbeat_counter"] for b in beats]
    assert counters[0] > 1000
    assert counters == list(range(counters[0], counters[0] + len(counters)))
    assert all(" +0000 UTC m=+" in b["current_time"] for b in beats)


def test_the_snapshot_sometimes_arrives_before_the_ack_deterministically() -> None:
    async def firsts() -> list[str]:
        out = []
        async with _exchange(start_paused=True) as ex:
            for _ in range(8):
                async with connect(ex.advanced_url) as ws:
                    await send(ws, {"type": "subscribe", "product_ids": ["ETH-USD"],
                                    "channel": "level2"})  # fmt: skip
                    first, second = await recv_json(ws), await recv_json(ws)
                    assert [first["sequence_num"], second["sequence_num"]] == [0, 1]
                    out.append(first["channel"])
        return out

    orders = _run(firsts())
    assert set(orders) == {"subscriptions", "l2_data"}
    assert _run(firsts()) == orders


def test_errors_for_bad_subscribes() -> None:
    async def scenario() -> list[Any]:
        async with _exchange() as ex, connect(ex.advanced_url) as ws:
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "full"})
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"],
                            "channels": ["level2"]})  # fmt: skip
            await send(ws, {"type": "subscribe", "product_ids": ["NOPE"], "channel": "level2"})
            return [await recv_json(ws) for _ in range(3)]

    errors = _run(scenario())
    assert all(set(e) == {"type", "message"} and e["type"] == "error" for e in errors)
    assert "full" in errors[0]["message"]
    assert "one channel" in errors[1]["message"]
    assert "NOPE" in errors[2]["message"]


def test_a_deep_book_makes_a_five_megabyte_snapshot_frame() -> None:
    async def scenario() -> tuple[int, int, int | None]:
        async with _exchange(products=("BTC-USD",), depth=23_000, start_paused=True) as ex:
            sub = {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"}
            async with connect(ex.advanced_url, max_size=None) as ws:
                await send(ws, sub)
                frames = [await ws.recv() for _ in range(2)]
                snapshot = max(frames, key=len)
                levels = len(json.loads(snapshot)["events"][0]["updates"])
            async with connect(ex.advanced_url) as ws:  # the default 1 MiB max_size
                await send(ws, sub)
                sent = (await until_closed(ws)).sent
            return len(snapshot), levels, sent.code if sent else None

    size, levels, code = _run(scenario())
    assert 4_500_000 < size < 8_000_000
    assert 40_000 < levels <= 46_000
    assert code == 1009  # the client refused the frame as too big


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_same_seed_gives_the_same_frames_and_faults_whatever_the_timing() -> None:
    faults = Faults(drop_frames=0.05, malformed=0.05, duplicates=0.05)

    async def scenario(delay: float) -> tuple[list[str], dict[str, Any]]:
        ex = _exchange(start_paused=True, speed=20.0, faults=faults)
        async with ex, connect(ex.advanced_url, max_size=None) as ws:
            await _subscribe_all(ws, ["BTC-USD", "ETH-USD"])
            await asyncio.sleep(delay)
            ex.resume()
            frames = [str(await ws.recv()) for _ in range(300)]
            return frames, ex.injected.connections[0].as_dict()

    first, first_faults = _run(scenario(0.0))
    second, second_faults = _run(scenario(0.3))
    assert first == second
    assert first_faults["malformed"] > 0
    assert first_faults["dropped_sequence_nums"][:3] == second_faults["dropped_sequence_nums"][:3]
