"""The local exchange's REST trades endpoint, over real HTTP on its websocket port."""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from quotewatch.simulate.market import Market
from quotewatch.simulate.rest import RestFaults, TradeHistory, TradesEndpoint
from quotewatch.simulate.server import LocalExchange


def _history(trades: int) -> TradeHistory:
    market = Market(("BTC-USD",), seed=3, start_us=1_700_000_000_000_000)
    history = TradeHistory(market)
    step = 1_700_000_000_000_000
    while len(history.trade_ids("BTC-USD")) < trades:
        step += 1_000_000
        history.record(market.advance(step))
    return history


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(1, 1000), pick=st.integers(0, 10_000))
def test_after_and_before_page_exactly_the_neighbouring_ids(limit: int, pick: int) -> None:
    history = HISTORY
    ids = history.trade_ids("BTC-USD")
    cursor = ids[pick % len(ids)]
    older = [
        row["trade_id"] for row in history.page("BTC-USD", after=cursor, before=None, limit=limit)
    ]
    newer = [
        row["trade_id"] for row in history.page("BTC-USD", before=cursor, after=None, limit=limit)
    ]
    i = ids.index(cursor)
    assert older == ids[max(0, i - limit) : i][::-1]
    assert newer == ids[i + 1 : i + 1 + limit][::-1]


HISTORY = _history(2500)


def test_serves_pages_with_cursors_and_the_rate_limit() -> None:
    async def scenario() -> None:
        async with LocalExchange(("BTC-USD",), seed=1, rate=20) as ex:
            await asyncio.sleep(1.0)
            async with httpx.AsyncClient(base_url=ex.rest_url) as client:
                first = await client.get("/products/BTC-USD/trades", params={"limit": 5})
                assert first.status_code == 200
                rows = first.json()
                ids = [row["trade_id"] for row in rows]
                assert ids == sorted(ids, reverse=True)
                assert len(ids) == 5
                assert (first.headers["cb-before"], first.headers["cb-after"]) == (
                    str(ids[0]),
                    str(ids[-1]),
                )
                assert set(rows[0]) == {"time", "trade_id", "price", "size", "side"}
                assert rows[0]["side"] in ("buy", "sell")
                assert rows[0]["time"].endswith("Z")
                older = await client.get(
                    "/products/BTC-USD/trades", params={"after": ids[-1], "limit": 3}
                )
                assert [r["trade_id"] for r in older.json()] == [
                    ids[-1] - 1,
                    ids[-1] - 2,
                    ids[-1] - 3,
                ]
                assert (await client.get("/products/NOPE-USD/trades")).status_code == 404
                bad = await client.get("/products/BTC-USD/trades", params={"limit": 1001})
                assert bad.status_code == 400
                codes = [
                    (await client.get("/products/BTC-USD/trades")).status_code for _ in range(20)
                ]
                # 15 of burst, 4 spent above: the rest of the 20 is refused.
                assert codes.count(429) >= 5
                assert codes[:10] == [200] * 10
                assert (await client.get("/products/BTC-USD/trades")).json() == {
                    "message": "Public rate limit exceeded"
                }

    asyncio.run(scenario())


def test_dropped_matches_stay_in_the_rest_history() -> None:
    from quotewatch.simulate.faults import Faults

    async def scenario() -> None:
        async with LocalExchange(
            ("BTC-USD",), seed=2, rate=20, faults=Faults(drop_matches=0.3)
        ) as ex:
            await asyncio.sleep(1.0)
            dropped = ex.injected.dropped_trades["BTC-USD"]
            ids = ex.rest.history.trade_ids("BTC-USD")
            assert dropped
            assert set(dropped) <= set(ids)
            assert ids == list(range(ids[0], ids[-1] + 1))  # every trade, contiguous

    asyncio.run(scenario())


def test_injected_faults() -> None:
    endpoint = TradesEndpoint(
        HISTORY, ("BTC-USD",), RestFaults(errors=0.5, throttle=0.2), seed=1, clock=lambda: 0.0
    )

    async def scenario() -> list[int]:
        out = []
        for i in range(15):  # within the burst
            response = await endpoint.respond("/products/BTC-USD/trades?limit=2", f"10.0.0.{i}")
            out.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Retry-After"] == "1"
        return out

    codes = asyncio.run(scenario())
    assert {200, 429, 503} <= set(codes)
