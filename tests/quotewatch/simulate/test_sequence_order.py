"""Advanced Trade `sequence_num` is numbered in send order: a client reads 0, 1, 2, ... in the
order frames arrive, also when a level2 snapshot overtakes the subscriptions ack."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from quotewatch.simulate.faults import Faults
from quotewatch.simulate.server import LocalExchange
from support.simulate import FIXED_START_US, drain, recv_for, send
from websockets.asyncio.client import connect

pytestmark = pytest.mark.timeout(30)

PRODUCTS = ["BTC-USD", "ETH-USD"]
LEVEL2 = {"type": "subscribe", "product_ids": PRODUCTS, "channel": "level2"}


def _exchange(faults: Faults) -> LocalExchange:
    return LocalExchange(
        products=PRODUCTS,
        seed=5,
        depth=100,
        rate=3.0,
        start_time_us=FIXED_START_US,
        speed=12.0,
        faults=faults,
    )


async def _connection(ex: LocalExchange) -> list[str]:
    """Every frame of one connection, in arrival order: level2 first (so the snapshots and the
    ack are its first frames), then trades and heartbeats while the market runs, then a level2
    resubscription mid-stream (unsubscribe + subscribe, as the ingest client resyncs)."""
    async with connect(ex.advanced_url, max_size=None) as ws:
        await send(ws, LEVEL2)
        for channel in ("market_trades", "heartbeats"):
            await send(ws, {"type": "subscribe", "product_ids": PRODUCTS, "channel": channel})
        texts = await recv_for(ws, 0.15)
        await send(ws, {**LEVEL2, "type": "unsubscribe"})
        await send(ws, LEVEL2)
        texts += await recv_for(ws, 0.15)
        ex.pause()  # the market stops: what was sent arrives, then nothing more
        # an ack is never dropped, so it numbers the end of the stream
        await send(ws, {"type": "unsubscribe", "product_ids": [], "channel": "heartbeats"})
        texts += await drain(ws, 0.1)
        ex.resume()
        return texts


def _capture(faults: Faults, connections: int) -> tuple[list[list[str]], LocalExchange]:
    async def scenario() -> tuple[list[list[str]], LocalExchange]:
        async with _exchange(faults) as ex:
            return [await _connection(ex) for _ in range(connections)], ex

    result: tuple[list[list[str]], LocalExchange] = asyncio.run(scenario())
    return result


def _is_l2_snapshot(frame: dict[str, Any]) -> bool:
    events = frame["events"]
    first = events[0] if isinstance(events, list) and events else None
    kind = first.get("type") if isinstance(first, dict) else None
    return frame["channel"] == "l2_data" and kind == "snapshot"


def _is_level2_ack(frame: dict[str, Any] | None) -> bool:
    return (
        frame is not None
        and frame["channel"] == "subscriptions"
        and "level2" in frame["events"][0]["subscriptions"]
    )


def _opening_orders(frames: list[dict[str, Any]]) -> list[str]:
    """For each level2 subscribe, in arrival order: did its snapshots come before its ack?

    A subscribe answers with the snapshots and the ack back to back. The ack is the one right
    before the snapshots (ack first) or else the one right after them (snapshot first): the
    frame before a level2 (re)subscription's answer is never an ack that lists level2."""
    orders: list[str] = []
    i = 0
    while i < len(frames):
        if not _is_l2_snapshot(frames[i]):
            i += 1
            continue
        before = frames[i - 1] if i else None
        start = i
        while i < len(frames) and _is_l2_snapshot(frames[i]):
            i += 1
        assert i - start == len(PRODUCTS)
        after = frames[i] if i < len(frames) else None
        if _is_level2_ack(before):
            orders.append("ack_first")
        else:
            assert _is_level2_ack(after)
            orders.append("snapshot_first")
    return orders


def test_sequence_num_is_0_1_2_in_arrival_order_whichever_comes_first() -> None:
    streams, _ = _capture(Faults(), connections=2)
    seen: set[str] = set()
    for texts in streams:
        frames = [json.loads(t) for t in texts]
        assert [f["sequence_num"] for f in frames] == list(range(len(frames)))
        assert len(frames) > 20
        assert frames[-1]["channel"] == "subscriptions"
        orders = _opening_orders(frames)
        assert len(orders) == 2  # the first subscribe and the resubscription
        seen.update(orders)
    # the seed makes both orders happen, and at least once the snapshots come before the ack
    assert seen == {"snapshot_first", "ack_first"}


def test_faults_keep_arrival_order_drops_take_a_number_unparsable_frames_none() -> None:
    faults = Faults(drop_frames=0.05, duplicates=0.05, malformed=0.2)
    streams, ex = _capture(faults, connections=2)
    seen: set[str] = set()
    for cid, texts in enumerate(streams):
        record = ex.injected.connections[cid]
        seqs: list[int] = []
        frames: list[dict[str, Any]] = []
        unparsable = 0
        previous = None
        for text in texts:
            try:
                frame = json.loads(text)
            except ValueError:
                unparsable += 1
                continue
            if text == previous:  # a duplicate repeats the frame just sent, verbatim
                continue
            previous = text
            seqs.append(frame["sequence_num"])
            frames.append(frame)
        # strictly increasing in arrival order; the numbers missing are exactly the dropped ones
        assert seqs == sorted(set(seqs))
        assert frames[0]["sequence_num"] == 0
        assert frames[-1]["channel"] == "subscriptions"
        assert sorted(set(range(seqs[-1] + 1)) - set(seqs)) == record.dropped_sequence_nums
        assert record.dropped_frames > 0
        assert record.duplicates > 0
        assert 0 < unparsable < record.malformed
        seen.update(_opening_orders(frames))
    assert "snapshot_first" in seen
