"""Fault injection: every injected fault is counted exactly, and shows up on the wire as such."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from quotewatch.simulate.faults import FaultConfigError, Faults
from quotewatch.simulate.server import LocalExchange
from support.simulate import FIXED_START_US, drain, recv_for, send, until_closed
from websockets.asyncio.client import connect

pytestmark = pytest.mark.timeout(30)

ISO_US = re.compile(r"^(\d{4})-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
EXCHANGE_SUB = {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"],
                "channels": ["level2_batch", "matches", "heartbeat"]}  # fmt: skip


def _exchange(faults: Faults, **kw: Any) -> LocalExchange:
    options: dict[str, Any] = {
        "products": ("BTC-USD", "ETH-USD"),
        "seed": 21,
        "depth": 200,
        "rate": 3.0,
        "start_time_us": FIXED_START_US,
        "speed": 12.0,
        "faults": faults,
    }
    options.update(kw)
    return LocalExchange(**options)


def _capture(faults: Faults, url: str, subs: list[dict[str, Any]], seconds: float = 0.4,
             **kw: Any) -> tuple[list[str], LocalExchange]:  # fmt: skip
    """Frames of one connection: stream for `seconds`, pause the market, drain the rest."""

    async def scenario() -> tuple[list[str], LocalExchange]:
        async with _exchange(faults, **kw) as ex:
            async with connect(getattr(ex, url), max_size=None) as ws:
                for sub in subs:
                    await send(ws, sub)
                texts = await recv_for(ws, seconds)
                ex.pause()
                texts += await drain(ws)
            return texts, ex

    result: tuple[list[str], LocalExchange] = asyncio.run(scenario())
    return result


def _decimal(text: Any, *, positive: bool) -> bool:
    if not isinstance(text, str) or not re.fullmatch(r"\d+(\.\d+)?", text):
        return False
    try:
        value = Decimal(text)
    except InvalidOperation:
        return False
    return value > 0 if positive else value >= 0


def _time_ok(text: Any) -> bool:
    m = ISO_US.match(text) if isinstance(text, str) else None
    return m is not None and int(m.group(1)) > 2000


def _valid_exchange(text: str) -> bool:
    try:
        m = json.loads(text)
    except ValueError:
        return False
    kind = m.get("type")
    if kind in ("subscriptions", "snapshot"):
        return True
    if kind == "l2update":
        changes = m.get("changes")
        return _time_ok(m.get("time")) and isinstance(changes, list) and bool(changes) and all(
            c[0] in ("buy", "sell") and _decimal(c[1], positive=True)
            and _decimal(c[2], positive=False) for c in changes
        )  # fmt: skip
    if kind in ("match", "last_match"):
        return (isinstance(m.get("trade_id"), int) and _time_ok(m.get("time"))
                and _decimal(m.get("price"), positive=True)
                and _decimal(m.get("size"), positive=True))  # fmt: skip
    if kind == "heartbeat":
        return isinstance(m.get("last_trade_id"), int) and _time_ok(m.get("time"))
    return False


def _valid_advanced(text: str) -> bool:
    try:
        f = json.loads(text)
    except ValueError:
        return False
    if set(f) != {"channel", "timestamp", "sequence_num", "events"}:
        return False
    events = f["events"]
    if not isinstance(f["sequence_num"], int) or not isinstance(events, list):
        return False
    if f["channel"] == "l2_data":
        return all(
            isinstance(e.get("updates"), list) and all(
                u["side"] in ("bid", "offer") and _decimal(u["price_level"], positive=True)
                and _decimal(u["new_quantity"], positive=False) and _time_ok(u["event_time"])
                for u in e["updates"])
            for e in events
        )  # fmt: skip
    if f["channel"] == "market_trades":
        return all(
            isinstance(t["trade_id"], str) and _decimal(t["price"], positive=True)
            and t["side"] in ("BUY", "SELL") for e in events for t in e["trades"]
        )  # fmt: skip
    return f["channel"] in ("subscriptions", "heartbeats")


def _trade_ids(texts: list[str], product: str) -> list[int]:
    ids = []
    for text in texts:
        m = json.loads(text)
        if m.get("type") == "match" and m["product_id"] == product:
            ids.append(m["trade_id"])
    return ids


def _missing(received: list[int]) -> list[int]:
    return sorted(set(range(received[0], received[-1] + 1)) - set(received))


def test_dropped_matches_are_exactly_the_gaps_in_trade_ids() -> None:
    texts, ex = _capture(Faults(drop_matches=0.3), "exchange_url", [EXCHANGE_SUB])
    for product in ("BTC-USD", "ETH-USD"):
        received = _trade_ids(texts, product)
        assert len(received) > 10
        injected = [
            i for i in ex.injected.dropped_trades[product] if received[0] < i < received[-1]
        ]
        assert _missing(received) == injected
        assert len(injected) > 2
        # heartbeats still count dropped trades: any id past the last received one was dropped
        last = None
        for text in texts:
            m = json.loads(text)
            if m.get("product_id") != product:
                continue
            if m["type"] in ("match", "last_match"):
                last = m["trade_id"]
            elif m["type"] == "heartbeat" and last is not None:
                assert m["last_trade_id"] >= last
                unseen = range(last + 1, m["last_trade_id"] + 1)
                assert set(unseen) <= set(ex.injected.dropped_trades[product])


def test_dropped_frames_are_exactly_the_gaps_in_sequence_num() -> None:
    subs = [{"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": c}
            for c in ("level2", "market_trades", "heartbeats")]  # fmt: skip
    texts, ex = _capture(Faults(drop_frames=0.1), "advanced_url", subs)
    seqs = [json.loads(t)["sequence_num"] for t in texts]
    (record,) = ex.injected.connections.values()
    assert seqs[0] == 0
    # Drops after the last frame received leave no gap to see; they can only be the last ones.
    tail = [n for n in record.dropped_sequence_nums if n > seqs[-1]]
    assert tail == list(range(seqs[-1] + 1, seqs[-1] + 1 + len(tail)))
    assert _missing(seqs) + tail == record.dropped_sequence_nums
    assert record.dropped_frames == len(record.dropped_sequence_nums) > 5
    assert seqs[-1] + 1 + len(tail) == len(seqs) + record.dropped_frames  # nothing else lost


def test_dropped_exchange_frames_record_the_trade_ids_they_carried() -> None:
    texts, ex = _capture(Faults(drop_frames=0.15), "exchange_url", [EXCHANGE_SUB])
    (record,) = ex.injected.connections.values()
    assert record.dropped_frames > 5
    for product in ("BTC-USD", "ETH-USD"):
        received = _trade_ids(texts, product)
        dropped = record.dropped_trade_ids.get(product, [])
        assert _missing(received) == [i for i in dropped if received[0] < i < received[-1]]
        assert ex.injected.missing_trade_ids(record.connection_id).get(product, []) == dropped


def test_malformed_exchange_frames_come_at_the_configured_rate_and_are_counted() -> None:
    texts, ex = _capture(Faults(malformed=0.2), "exchange_url", [EXCHANGE_SUB])
    (record,) = ex.injected.connections.values()
    invalid = [t for t in texts if not _valid_exchange(t)]
    assert len(invalid) == record.malformed == ex.injected.malformed
    stream = len(texts) - len(invalid) - sum('"subscriptions"' in t or '"snapshot"' in t
                                             or '"last_match"' in t for t in texts)  # fmt: skip
    assert stream > 150
    assert 0.12 < record.malformed / stream < 0.28
    kinds = " ".join(invalid)
    for anomaly in ("0001-01-01T00:00:00.000000Z", "NaN", "auction_open"):
        assert anomaly in kinds
    # valid frames still carry every trade
    for product in ("BTC-USD", "ETH-USD"):
        received = [json.loads(t)["trade_id"] for t in texts if _valid_exchange(t)
                    and '"type":"match"' in t and product in t]  # fmt: skip
        assert received == list(range(received[0], received[0] + len(received)))


def test_malformed_advanced_frames_leave_sequence_num_contiguous() -> None:
    subs = [{"type": "subscribe", "product_ids": ["BTC-USD"], "channel": c}
            for c in ("level2", "market_trades", "heartbeats")]  # fmt: skip
    texts, ex = _capture(Faults(malformed=0.2), "advanced_url", subs)
    (record,) = ex.injected.connections.values()
    invalid = [t for t in texts if not _valid_advanced(t)]
    assert len(invalid) == record.malformed > 5
    seqs = []
    for text in texts:
        try:
            seq = json.loads(text).get("sequence_num")
        except ValueError:
            continue
        if isinstance(seq, int):
            seqs.append(seq)
    assert seqs == list(range(len(seqs)))


def test_duplicates_repeat_a_frame_verbatim_and_are_counted() -> None:
    texts, ex = _capture(Faults(duplicates=0.1), "exchange_url", [EXCHANGE_SUB])
    (record,) = ex.injected.connections.values()
    pairs = itertools.pairwise(texts)
    repeats = sum(a == b and '"subscriptions"' not in a for a, b in pairs)
    assert repeats == record.duplicates == ex.injected.duplicates > 5


def test_disconnect_every_closes_each_connection() -> None:
    async def scenario() -> tuple[int | None, float, LocalExchange]:
        async with _exchange(Faults(disconnect_every=0.4)) as ex:
            loop = asyncio.get_running_loop()
            async with connect(ex.exchange_url) as ws:
                await send(ws, EXCHANGE_SUB)
                started = loop.time()
                rcvd = (await until_closed(ws)).rcvd
            return rcvd.code if rcvd else None, loop.time() - started, ex

    code, elapsed, ex = asyncio.run(scenario())
    assert code == 1001
    assert 0.3 < elapsed < 1.5
    assert ex.injected.disconnects == 1
    assert ex.injected.connections[0].disconnected == "disconnect_every: injected disconnect"


def test_a_slow_consumer_gets_err_slow_consume_and_is_closed() -> None:
    async def scenario() -> tuple[list[str], int | None]:
        ex = _exchange(Faults(), products=("BTC-USD",), depth=2_000, max_pending=20)
        async with ex:
            # A small receive buffer, so that a client that stops reading backs up the server
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", ex.port))
            async with connect(ex.exchange_url, sock=sock, max_size=None, max_queue=1) as ws:
                big = {"type": "subscribe", "product_ids": ["BTC-USD"],
                       "channels": ["level2_batch", "matches"]}  # fmt: skip
                for _ in range(4):  # a few snapshots fill the socket buffers
                    await send(ws, big)
                await asyncio.sleep(0.5)  # ... while this client reads nothing
                texts = await drain(ws, quiet=2.0)
                return texts, ws.close_code

    texts, code = asyncio.run(scenario())
    assert json.loads(texts[-1]) == {
        "type": "error",
        "message": "too many messages pending: read faster",
        "reason": "ErrSlowConsume",
    }  # fmt: skip
    assert code == 1008


def test_injected_counters_serialise_to_json() -> None:
    faults = Faults(drop_matches=0.2, drop_frames=0.05, duplicates=0.05, malformed=0.05)
    _texts, ex = _capture(faults, "exchange_url", [EXCHANGE_SUB], seconds=0.3)
    data = json.loads(json.dumps(ex.injected.as_dict()))
    assert set(data) == {"dropped_trades", "dropped_frames", "malformed", "duplicates",
                         "disconnects", "connections"}  # fmt: skip
    assert data["dropped_frames"] == ex.injected.dropped_frames
    (conn,) = data["connections"]
    assert conn["protocol"] == "exchange"
    assert conn["connection_id"] == 0
    assert set(data["dropped_trades"]) <= {"BTC-USD", "ETH-USD"}


def test_bad_fault_options_are_refused_clearly() -> None:
    with pytest.raises(FaultConfigError, match="drop_matches"):
        Faults(drop_matches=1.5)
    with pytest.raises(FaultConfigError, match="disconnect_every"):
        Faults(disconnect_every=0)
    with pytest.raises(FaultConfigError, match="burst_duration"):
        Faults(burst_factor=5, burst_every=10, burst_duration=20)
