"""The Coinbase Exchange feed of the local exchange, over real websockets on loopback."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
from decimal import Decimal
from typing import Any

import pytest
from quotewatch.simulate.exchange_protocol import AUTH_REASON, sign
from quotewatch.simulate.server import LocalExchange
from support.simulate import FIXED_START_US, drain, recv_for, recv_json, send
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SECRET = base64.b64encode(b"local-test-secret").decode()

pytestmark = pytest.mark.timeout(30)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _exchange(**kw: Any) -> LocalExchange:
    options: dict[str, Any] = {
        "products": ("BTC-USD", "ETH-USD"),
        "seed": 5,
        "depth": 200,
        "start_time_us": FIXED_START_US,
        "speed": 12.0,
    }
    options.update(kw)
    return LocalExchange(**options)


def _acks_then_rest(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    acks = [m for m in messages if m["type"] == "subscriptions"]
    return acks, [m for m in messages if m["type"] != "subscriptions"]


def test_subscribe_ack_snapshot_and_last_match_shapes() -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with _exchange() as ex, connect(ex.exchange_url) as ws:
            await send(ws, {
                "type": "subscribe",
                "product_ids": ["BTC-USD"],
                "channels": ["level2_batch", "heartbeat",
                             {"name": "matches", "product_ids": ["BTC-USD", "ETH-USD"]}],
            })  # fmt: skip
            return [await recv_json(ws) for _ in range(5)]

    messages = _run(scenario())
    assert messages[0] == {
        "type": "subscriptions",
        "channels": [
            {"name": "level2_batch", "product_ids": ["BTC-USD"]},
            {"name": "heartbeat", "product_ids": ["BTC-USD"]},
            {"name": "matches", "product_ids": ["BTC-USD", "ETH-USD"]},
        ],
    }
    acks, rest = _acks_then_rest(messages)
    assert all(a == messages[0] for a in acks)  # the ack may repeat, identically
    snapshot, last_btc, last_eth = rest[:3]
    assert set(snapshot) == {"type", "product_id", "bids", "asks"}  # no time, no sequence
    assert snapshot["type"] == "snapshot"
    assert snapshot["product_id"] == "BTC-USD"
    assert len(snapshot["bids"]) > 100
    assert len(snapshot["asks"]) > 100
    assert all(isinstance(p, str) and isinstance(s, str) for p, s in snapshot["bids"])
    assert Decimal(snapshot["bids"][0][0]) < Decimal(snapshot["asks"][0][0])
    assert re.fullmatch(r"\d+\.\d{2}", snapshot["bids"][0][0])
    assert re.fullmatch(r"\d+\.\d{8}", snapshot["bids"][0][1])
    assert [last_btc["type"], last_btc["product_id"]] == ["last_match", "BTC-USD"]
    assert [last_eth["type"], last_eth["product_id"]] == ["last_match", "ETH-USD"]
    assert set(last_btc) == {
        "type", "trade_id", "maker_order_id", "taker_order_id", "side", "size", "price",
        "product_id", "sequence", "time",
    }  # fmt: skip
    assert isinstance(last_btc["trade_id"], int)
    assert isinstance(last_btc["sequence"], int)
    assert TIME.match(last_btc["time"])


def test_level2_without_credentials_gets_the_real_error() -> None:
    async def scenario() -> dict[str, Any]:
        async with _exchange() as ex, connect(ex.exchange_url) as ws:
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"],
                            "channels": ["level2", "heartbeat"]})  # fmt: skip
            result: dict[str, Any] = await recv_json(ws)
            return result

    assert _run(scenario()) == {
        "type": "error",
        "message": "Failed to subscribe",
        "reason": AUTH_REASON,
    }
    assert AUTH_REASON.startswith("level2, level3, and full channels now require authentication")


def test_level2_with_credentials_checks_the_signature_against_the_configured_secret() -> None:
    def message(signature: str, timestamp: str) -> dict[str, Any]:
        return {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["level2"],
                "signature": signature, "key": "test-key", "passphrase": "test-pass",
                "timestamp": timestamp}  # fmt: skip

    async def scenario() -> tuple[Any, Any]:
        async with _exchange(auth_secret=SECRET) as ex:
            stamp = str(int(time.time()))
            async with connect(ex.exchange_url, max_size=None) as ws:
                await send(ws, message(sign(SECRET, stamp), stamp))
                good = await recv_json(ws)
            async with connect(ex.exchange_url) as ws:
                await send(ws, message(sign(base64.b64encode(b"wrong").decode(), stamp), stamp))
                bad = await recv_json(ws)
            return good, bad

    good, bad = _run(scenario())
    assert good == {"type": "subscriptions",
                    "channels": [{"name": "level2", "product_ids": ["BTC-USD"]}]}  # fmt: skip
    assert bad["type"] == "error"
    assert bad["message"] == "authentication failure"


def test_unknown_channel_product_and_type_get_errors() -> None:
    async def scenario() -> list[Any]:
        async with _exchange() as ex, connect(ex.exchange_url) as ws:
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["nope"]})
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"],
                            "channels": ["ticker"]})  # fmt: skip
            await send(ws, {"type": "subscribe", "product_ids": ["FOO-USD"],
                            "channels": ["matches"]})  # fmt: skip
            await send(ws, {"type": "hello"})
            await ws.send("{not json")
            return [await recv_json(ws) for _ in range(5)]

    errors = _run(scenario())
    assert all(e["type"] == "error" for e in errors)
    assert errors[0]["reason"] == "nope is not a valid channel"
    assert errors[1]["reason"] == "ticker is not supported by quotewatch simulate"
    assert errors[2]["reason"] == "FOO-USD is not a valid product"
    assert "subscribe" in errors[3]["reason"]
    assert errors[4]["reason"] == "malformed JSON"


def test_unsubscribe_acks_what_is_left_and_stops_that_channel() -> None:
    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with _exchange(rate=3.0) as ex, connect(ex.exchange_url) as ws:
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"],
                            "channels": ["matches", "heartbeat"]})  # fmt: skip
            await recv_for(ws, 0.2)
            await send(ws, {"type": "unsubscribe", "channels": ["matches"],
                            "product_ids": ["BTC-USD"]})  # fmt: skip
            texts = await recv_for(ws, 0.3)
            first_ack = next(i for i, t in enumerate(texts) if '"subscriptions"' in t)
            after = [json.loads(t) for t in texts[first_ack:]]
            ack = after[0]
            return ack, after

    ack, after = _run(scenario())
    assert ack["channels"] == [{"name": "heartbeat", "product_ids": ["BTC-USD"]}]
    assert {m["type"] for m in after} == {"subscriptions", "heartbeat"}


def test_a_client_that_does_not_subscribe_in_time_is_disconnected() -> None:
    async def scenario() -> tuple[float, int | None]:
        async with _exchange(subscribe_timeout=0.3) as ex, connect(ex.exchange_url) as ws:
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None
            return time.monotonic() - started, closed.value.rcvd.code

    elapsed, code = _run(scenario())
    assert 0.25 < elapsed < 2.0
    assert code == 1008


def _stream(**kw: Any) -> list[dict[str, Any]]:
    async def scenario() -> list[dict[str, Any]]:
        async with _exchange(**kw) as ex, connect(ex.exchange_url) as ws:
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"],
                            "channels": ["matches", "heartbeat", "level2_batch"]})  # fmt: skip
            return [json.loads(t) for t in await recv_for(ws, 0.5)]

    result: list[dict[str, Any]] = _run(scenario())
    return result


def test_trade_ids_contiguous_sequences_jump_and_heartbeats_agree() -> None:
    messages = _stream(rate=2.0)
    for product in ("BTC-USD", "ETH-USD"):
        trades = [m for m in messages if m["type"] in ("last_match", "match")
                  and m["product_id"] == product]  # fmt: skip
        assert trades[0]["type"] == "last_match"
        assert len(trades) > 10
        ids = [t["trade_id"] for t in trades]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        steps = [b["sequence"] - a["sequence"] for a, b in itertools.pairwise(trades)]
        assert min(steps) > 1
        assert max(steps) > 20
        last_id = None
        beats = 0
        for m in messages:
            if m.get("product_id") != product:
                continue
            if m["type"] in ("last_match", "match"):
                last_id = m["trade_id"]
            elif m["type"] == "heartbeat":
                beats += 1
                assert set(m) == {"type", "sequence", "last_trade_id", "product_id", "time"}
                assert m["last_trade_id"] == last_id
                assert TIME.match(m["time"])
                assert m["time"].endswith(".000000Z")
        assert beats >= 4  # 0.5 s at 12x speed


def test_l2updates_replay_to_the_next_snapshot() -> None:
    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with _exchange(rate=3.0) as ex, connect(ex.exchange_url) as ws:
            sub = {"type": "subscribe", "product_ids": ["ETH-USD"], "channels": ["level2_batch"]}
            await send(ws, sub)
            first = [json.loads(t) for t in await recv_for(ws, 0.4)]
            ex.pause()
            await send(ws, sub)  # a new subscribe brings a fresh snapshot
            rest = [json.loads(t) for t in await drain(ws)]
            return first + rest, next(m for m in rest if m["type"] == "snapshot")

    messages, again = _run(scenario())
    book: dict[str, dict[Decimal, Decimal]] = {"buy": {}, "sell": {}}
    snapshot = next(m for m in messages if m["type"] == "snapshot")
    for side, levels in (("buy", snapshot["bids"]), ("sell", snapshot["asks"])):
        book[side] = {Decimal(p): Decimal(s) for p, s in levels}
    updates = 0
    for m in messages[messages.index(snapshot) + 1 :]:
        if m is again:
            break
        if m["type"] != "l2update":
            continue
        assert set(m) == {"type", "product_id", "changes", "time"}  # no sequence
        assert TIME.match(m["time"])
        for side, price, size in m["changes"]:
            assert side in ("buy", "sell")
            updates += 1
            if Decimal(size) == 0:
                book[side].pop(Decimal(price), None)
            else:
                book[side][Decimal(price)] = Decimal(size)
        assert max(book["buy"]) < min(book["sell"])
    assert updates > 50
    assert book["buy"] == {Decimal(p): Decimal(s) for p, s in again["bids"]}
    assert book["sell"] == {Decimal(p): Decimal(s) for p, s in again["asks"]}


def test_the_same_seed_gives_the_same_messages_whatever_the_timing() -> None:
    async def scenario(delay: float) -> list[str]:
        async with _exchange(start_paused=True, speed=20.0) as ex, connect(ex.exchange_url) as ws:
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"],
                            "channels": ["matches", "heartbeat", "level2_batch"]})  # fmt: skip
            await asyncio.sleep(delay)
            ex.resume()
            out = [str(await ws.recv()) for _ in range(300)]
            return [t for t in out if '"subscriptions"' not in t]  # the ack may repeat

    first = _run(scenario(0.0))
    second = _run(scenario(0.3))
    assert first == second
    assert sum('"type":"match"' in t for t in first) > 5
