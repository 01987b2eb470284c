"""Trade backfill against the local exchange's REST API over loopback: a demo with dropped
matches heals completely; REST faults are retried, then healed or counted, never raised."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from quotewatch.cli import main
from quotewatch.ingest.backfill import Backfiller
from quotewatch.ingest.rest_trades import TradesApi
from quotewatch.simulate.rest import RestFaults
from quotewatch.simulate.server import LocalExchange
from qw_metrics import Gap

from tests.support.storage import read_table


def test_demo_with_dropped_matches_heals_completely(tmp_path: Path) -> None:
    summary_path, faults_path = tmp_path / "summary.json", tmp_path / "faults.json"
    status = main([
        "demo", "--duration", "8", "--no-dashboard", "--port", "0", "--rate", "5",
        "--drop-matches", "0.05", "--data-dir", str(tmp_path / "data"),
        "--summary-json", str(summary_path), "--faults-json", str(faults_path),
    ])  # fmt: skip
    assert status == 0
    summary = json.loads(summary_path.read_text())
    btc = summary["products"]["BTC-USD"]
    assert btc["trades_missed"] > 0
    assert btc["trades_unrecovered"] == 0
    assert btc["trades_backfilled"] == btc["trades_missed"]
    assert summary["storage"]["completeness"]["raw_trades"] == 1.0
    rows = read_table(tmp_path / "data", "raw_trades")
    ids = sorted(int(r["trade_id"]) for r in rows)  # type: ignore[call-overload]
    # Every trade the exchange made from the first to the last the client saw, once each.
    assert ids == list(range(ids[0], ids[-1] + 1))
    dropped = json.loads(faults_path.read_text())["dropped_trades"]["BTC-USD"]
    in_span = {i for i in dropped if ids[0] <= i <= ids[-1]}
    assert in_span
    rest = {int(r["trade_id"]) for r in rows if r["source"] == "rest"}  # type: ignore[call-overload]
    assert rest == in_span
    assert summary["backfill"]["enabled"] is True


def _backfill(
    faults: RestFaults, missing: int, timeout: float, seed: int = 4
) -> tuple[Backfiller, Gap, list[int]]:
    """Run one gap of `missing` ids, ending 20 trades before the newest, through a backfiller."""

    async def scenario() -> tuple[Backfiller, Gap, list[int]]:
        async with LocalExchange(("BTC-USD",), seed=seed, rate=50, rest_faults=faults) as ex:
            await asyncio.sleep(1.5)
            newest = ex.rest.history.trade_ids("BTC-USD")[-1]
            gap = Gap(newest - 20 - missing + 1, newest - 20)
            backfiller = Backfiller(TradesApi(ex.rest_url), backoff_s=0.05)
            backfiller.start()
            backfiller.request("BTC-USD", gap)
            found: list[int] = []
            deadline = time.monotonic() + timeout
            await asyncio.sleep(0.2)  # the thread takes the gap up
            while time.monotonic() < deadline and not backfiller.idle:
                await asyncio.sleep(0.05)
            backfiller.close(1.0)
            found.extend(t.trade_id for t in backfiller.take())
            return backfiller, gap, found

    return asyncio.run(scenario())


def test_rest_errors_are_retried_until_healed() -> None:
    backfiller, gap, found = _backfill(RestFaults(errors=0.5, throttle=0.3), 30, 20.0, seed=3)
    # Seed 3's REST faults answer 503, then 429, then 200.
    assert sorted(found) == list(range(gap.start, gap.end + 1))
    statuses = backfiller.stats.statuses
    assert (statuses["503"], statuses["429"], statuses["200"]) == (1, 1, 1)
    assert backfiller.stats.unrecovered == {}


def test_a_rest_api_that_always_fails_counts_the_gap_unrecovered() -> None:
    backfiller, gap, found = _backfill(RestFaults(errors=1.0), 30, 20.0)
    assert found == []
    assert backfiller.stats.unrecovered == {"BTC-USD": gap.missed}
    assert backfiller.stats.statuses == {"503": 6}


def test_a_gap_beyond_the_bound_fetches_only_its_newest_ids() -> None:
    async def scenario() -> None:
        async with LocalExchange(("BTC-USD",), seed=5, rate=50) as ex:
            await asyncio.sleep(1.0)
            newest = ex.rest.history.trade_ids("BTC-USD")[-1]
            backfiller = Backfiller(TradesApi(ex.rest_url), max_ids=10)
            backfiller.request("BTC-USD", Gap(newest - 29, newest))
            assert backfiller.stats.unrecovered == {"BTC-USD": 20}
            backfiller.start()
            while not backfiller.idle:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            assert sorted(t.trade_id for t in backfiller.take()) == list(
                range(newest - 9, newest + 1)
            )
            backfiller.close(1.0)

    asyncio.run(scenario())
