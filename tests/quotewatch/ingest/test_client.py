"""The live client over real loopback websockets against the local exchange."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY
from quotewatch.config import ConfigError
from quotewatch.events import BookSnapshot, BookUpdate, Event, FeedError
from quotewatch.ingest.auth import ExchangeCredentials
from quotewatch.ingest.client import FeedClient
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import FeedSession
from quotewatch.simulate.exchange_protocol import sign
from quotewatch.simulate.faults import Faults
from quotewatch.simulate.server import LocalExchange
from support.ingest import run_client, runs
from websockets.asyncio.server import ServerConnection, serve

PRODUCTS = ("BTC-USD", "ETH-USD")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("feed", list(Feed))
def test_server_disconnect_reconnects_and_resubscribes_within_2s(feed: Feed) -> None:
    arrivals: list[tuple[float, Event]] = []
    before = sample("websocket_reconnections_total", feed=feed.value, reason="closed")

    def resynced(product: str) -> bool:
        """An update came after the snapshot of a resubscription."""
        snapshots = 0
        for _, e in arrivals:
            if getattr(e, "product", None) != product:
                continue
            if isinstance(e, BookSnapshot):
                snapshots += 1
            elif isinstance(e, BookUpdate) and snapshots >= 2:
                return True
        return False

    async def scenario() -> tuple[FeedSession, FeedClient]:
        faults = Faults(disconnect_every=0.6)
        async with LocalExchange(PRODUCTS, seed=1, speed=4.0, faults=faults) as ex:
            return await run_client(
                ex, feed, PRODUCTS, 1.4,
                consumers=[lambda e, _book: arrivals.append((time.monotonic(), e))],
                until=lambda: all(map(resynced, PRODUCTS)),
            )  # fmt: skip

    _, client = asyncio.run(scenario())
    assert client.connections >= 2
    assert sample("websocket_reconnections_total", feed=feed.value, reason="closed") >= before + 1
    snapshots = [(t, e) for t, e in arrivals if isinstance(e, BookSnapshot)]
    for product in PRODUCTS:
        times = [t for t, e in snapshots if e.product == product]
        assert len(times) >= 2, f"{product} was not resubscribed"
        # Each fresh snapshot after a disconnect came less than 2 s after the previous frame.
        for t in times[1:]:
            previous = max(a for a, _ in arrivals if a < t)
            assert t - previous < 2.0
        # Updates after a fresh snapshot reached consumers, which a stale book never passes on.
        # (The book may be empty at the very end: a disconnect can land during the drain.)
        assert resynced(product), f"{product} got no updates after resubscribing"


def test_exchange_injected_drops_give_exact_trade_gaps() -> None:
    async def scenario() -> tuple[FeedSession, dict[str, list[int]]]:
        faults = Faults(drop_matches=0.08, drop_frames=0.03, duplicates=0.03)
        async with LocalExchange(PRODUCTS, seed=7, speed=8.0, faults=faults) as ex:
            session, client = await run_client(
                ex, Feed.EXCHANGE, PRODUCTS, 1.5,
                until=lambda: sum(map(len, ex.injected.missing_trade_ids(0).values())) > 5,
            )  # fmt: skip
            assert client.connections == 1
            return session, ex.injected.missing_trade_ids(0)

    session, missing = asyncio.run(scenario())
    tracker = session.trades.tracker
    for product in PRODUCTS:
        last = tracker.last(product)
        assert last is not None
        # Losses after the newest id received (and not yet proved by a heartbeat) are unseen.
        expected = [i for i in missing.get(product, []) if i <= last]
        stats = tracker.stats(product)
        heartbeat = session.trades.heartbeat_gaps.get(product, [])
        assert stats.missed + sum(g.missed for g in heartbeat) == len(expected)
        # A heartbeat can prove the first ids of a run missing before the next trade shows the
        # rest, so a run may be reported as two gaps, one from each source.
        assert runs(expected) <= stats.gaps + len(heartbeat) <= runs(expected) + len(heartbeat)
    assert sum(len(v) for v in missing.values()) > 5


def test_advanced_injected_frame_drops_give_exact_sequence_gaps() -> None:
    label = ",".join(PRODUCTS)
    before = sample("coinbase_messages_missed_total", product=label, source="sequence_num")

    async def scenario() -> tuple[FeedSession, list[int], int]:
        faults = Faults(drop_frames=0.05, duplicates=0.03, malformed=0.03)
        async with LocalExchange(PRODUCTS, seed=11, speed=4.0, faults=faults) as ex:
            session, client = await run_client(
                ex, Feed.ADVANCED, PRODUCTS, 1.5,
                until=lambda: len(ex.injected.connections[0].dropped_sequence_nums) >= 3,
            )  # fmt: skip
            assert client.connections == 1
            record = ex.injected.connections[0]
            return session, record.dropped_sequence_nums, record.duplicates

    session, dropped, duplicates = asyncio.run(scenario())
    last = session.sequence.tracker.last(label)
    assert last is not None
    expected = [s for s in dropped if s <= last]
    stats = session.sequence.tracker.stats(label)
    assert (stats.gaps, stats.missed) == (runs(expected), len(expected))
    # frames arrive in the order numbered: nothing missing turns up later
    assert (stats.late, stats.duplicates) == (0, duplicates)
    assert len(expected) >= 3
    assert sample("coinbase_messages_missed_total", product=label, source="sequence_num") == (
        before + len(expected)
    )
    # Gaps made the session resubscribe level2, and fresh snapshots came back.
    for product in PRODUCTS:
        assert session.stats.products[product].resyncs >= 1
        assert session.stats.products[product].snapshots >= 2


@pytest.mark.parametrize("feed", list(Feed))
def test_malformed_frames_are_counted_and_the_run_goes_on(feed: Feed) -> None:
    async def scenario() -> tuple[FeedSession, int]:
        async with LocalExchange(PRODUCTS, seed=5, speed=4.0, faults=Faults(malformed=0.1)) as ex:
            session, _ = await run_client(ex, feed, PRODUCTS, 1.0)
            return session, ex.injected.malformed

    session, malformed = asyncio.run(scenario())
    assert malformed >= 5
    assert sum(session.stats.invalid.values()) == malformed
    assert all(session.books[p].ready for p in PRODUCTS)
    assert sum(session.stats.products[p].book_updates for p in PRODUCTS) > 20


def test_silence_means_a_dead_connection() -> None:
    before = sample("websocket_reconnections_total", feed="exchange", reason="silence")

    async def scenario() -> FeedClient:
        async with LocalExchange(PRODUCTS, seed=2, start_paused=True) as ex:
            _, client = await run_client(
                ex, Feed.EXCHANGE, PRODUCTS, 1.0, silence_timeout=0.3, drain=0
            )
            return client

    client = asyncio.run(scenario())
    assert [r.reason for r in client.reconnects][:2] == ["silence", "silence"]
    assert sample("websocket_reconnections_total", feed="exchange", reason="silence") >= before + 2


def test_slow_consumer_disconnect_is_handled() -> None:
    events: list[Event] = []

    def slow(event: Event, _book: object) -> None:
        events.append(event)
        if len(events) == 5:
            time.sleep(0.5)  # blocks the feed loop: the server's queue for us overflows

    async def scenario() -> FeedClient:
        async with LocalExchange(PRODUCTS, seed=3, speed=20.0, max_pending=50) as ex:
            _, client = await run_client(ex, Feed.EXCHANGE, PRODUCTS, 1.2, consumers=[slow])
            return client

    client = asyncio.run(scenario())
    assert "slow_consumer" in [r.reason for r in client.reconnects]
    assert any(isinstance(e, FeedError) and "Slow" in e.reason for e in events)


def test_signed_level2_subscription_is_accepted() -> None:
    secret = base64.b64encode(b"not a real secret, only for tests").decode()
    credentials = ExchangeCredentials("key-1", secret, "phrase")
    assert credentials.sign("1700000000") == sign(secret, "1700000000")
    assert secret not in repr(credentials)
    events: list[Event] = []

    async def scenario() -> FeedSession:
        async with LocalExchange(PRODUCTS, seed=4, auth_secret=secret) as ex:
            session = FeedSession(
                Feed.EXCHANGE,
                products=PRODUCTS,
                consumers=[lambda event, _book: events.append(event)],
            )
            client = FeedClient(session, url=ex.exchange_url, credentials=credentials)
            assert client.subscriptions.book_channel == "level2"
            task = asyncio.create_task(client.run())
            await asyncio.sleep(0.6)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return session

    session = asyncio.run(scenario())
    assert not [e for e in events if isinstance(e, FeedError)]
    assert all(session.books[p].ready for p in PRODUCTS)


def test_credentials_from_env_need_all_three() -> None:
    assert ExchangeCredentials.from_env({}) is None
    with pytest.raises(ConfigError, match="COINBASE_API_PASSPHRASE"):
        ExchangeCredentials.from_env({"COINBASE_API_KEY": "k", "COINBASE_API_SECRET": "c2VjcmV0"})
    with pytest.raises(ConfigError, match="not valid base64") as info:
        ExchangeCredentials("k", "%%%not-base64", "p")
    assert "%%%" not in str(info.value)


def test_a_5mb_snapshot_frame_is_accepted() -> None:
    levels = 23_000
    updates = [
        {"side": side, "event_time": "2024-01-01T00:00:00Z",
         "price_level": f"{base + sign_ * i * 0.01:.2f}", "new_quantity": "0.12345678"}
        for side, base, sign_ in (("bid", 60000.0, -1), ("offer", 60000.01, 1))
        for i in range(levels)
    ]  # fmt: skip
    frame = json.dumps(
        {
            "channel": "l2_data",
            "timestamp": "2024-01-01T00:00:00.000000000Z",
            "sequence_num": 0,
            "events": [{"type": "snapshot", "product_id": "BTC-USD", "updates": updates}],
        }
    )
    assert len(frame) > 5_000_000
    subscribed: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        for _ in range(3):
            subscribed.append(json.loads(await ws.recv()))
        await ws.send(frame)
        await ws.wait_closed()

    async def scenario() -> FeedSession:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            session = FeedSession(Feed.ADVANCED, products=["BTC-USD"])
            client = FeedClient(session, url=f"ws://127.0.0.1:{port}")
            task = asyncio.create_task(client.run())
            for _ in range(100):
                await asyncio.sleep(0.05)
                if session.books["BTC-USD"].ready:
                    break
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return session

    session = asyncio.run(scenario())
    assert session.books["BTC-USD"].depth() == (levels, levels)
    assert sorted(m["channel"] for m in subscribed) == ["heartbeats", "level2", "market_trades"]
