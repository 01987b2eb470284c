"""The soak and fault suite behind `scripts/soak`: each scenario prints one row of a table.

Scenarios: feed faults, a receiver outage, fuzzed frames, a catalog outage (a real Postgres
cluster, stopped and started again; skipped without Debian `postgresql`). Columns: what was
injected, what was detected, what was lost (injected but neither detected nor recovered), the
process's peak RSS and the p99 event-loop lag while it ran. Each scenario runs under a run's
process tuning (`tuned_for_feed`: GIL switch interval, garbage-collector thresholds), as
`quotewatch run` does. `--minutes` scales every timed scenario (the full run is 10), `--frames`
the fuzz scenario (the full run is 1M). Not part of the default test run: it takes minutes to
hours.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from prometheus_client import CollectorRegistry, Gauge
from quotewatch.app.process_tuning import tuned_for_feed
from quotewatch.ingest.client import Backoff, FeedClient
from quotewatch.ingest.invalid import Invalid
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import FeedSession
from quotewatch.simulate.faults import Faults
from quotewatch.simulate.server import LocalExchange
from qw_metrics import MetricsPusher, RemoteWriteClient
from support.coinbase_messages import ADVANCED, EXCHANGE
from support.postgres import Cluster, new_database, postgres_bin, postgres_cluster

PRODUCTS = ("BTC-USD", "ETH-USD")
Row = dict[str, str]


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class LoopLag:
    """Samples how late a 10 ms sleep wakes up: the event loop's lag."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.01)
            self.samples.append(max(0.0, loop.time() - start - 0.01))

    def p99_ms(self) -> str:
        if not self.samples:
            return "n/a"
        ordered = sorted(self.samples)
        return f"{ordered[int(0.99 * (len(ordered) - 1))] * 1e3:.2f} ms"


async def with_lag(work: Coroutine[Any, Any, Row]) -> Row:
    lag = LoopLag()
    probe = asyncio.create_task(lag.run())
    try:
        row = await work
    finally:
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
    row["p99 loop lag"] = lag.p99_ms()
    return row


async def feed_faults(minutes: float) -> Row:
    """The local exchange with a disconnect every 10 s, 1% dropped and 0.1% malformed frames
    and 10x bursts, against the live client."""
    faults = Faults(drop_frames=0.01, malformed=0.001, disconnect_every=10.0,
                    burst_factor=10.0, burst_every=30.0, burst_duration=5.0)  # fmt: skip
    session = FeedSession(Feed.EXCHANGE, products=PRODUCTS, drop_unsubscribed=True)
    async with LocalExchange(PRODUCTS, seed=18, faults=faults) as ex:
        backoff = Backoff(initial=0.1, maximum=0.5, healthy_after=5.0)
        client = FeedClient(session, url=ex.exchange_url, backoff=backoff)
        task = asyncio.create_task(client.run())
        await asyncio.sleep(minutes * 60)
        ex.pause()
        await asyncio.sleep(1.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        injected = ex.injected
        dropped_trades = sum(
            len(ids)
            for cid in injected.connections
            for ids in injected.connections[cid].dropped_trade_ids.values()
        )
    stats = session.trades.tracker.totals()
    beats = sum(len(g) for g in session.trades.heartbeat_gaps.values())
    missed = stats.missed + sum(
        g.missed for gs in session.trades.heartbeat_gaps.values() for g in gs
    )
    invalid = sum(session.stats.invalid.values())
    lost_malformed = max(0, injected.malformed - invalid)
    lost_trades = max(0, dropped_trades - missed)
    return {
        "scenario": f"feed faults, {minutes:g} min",
        "injected": f"{injected.disconnects} disconnects, {injected.dropped_frames} frames dropped "
        f"({dropped_trades} trades), {injected.malformed} malformed, 10x bursts",
        "detected": f"{len(client.reconnects)} reconnects, {stats.gaps + beats} gaps "
        f"({missed} trades missed), {invalid} invalid",
        "lost": f"{lost_malformed + lost_trades} undetected",
        "peak RSS": f"{peak_rss_mb():.0f} MB",
    }


async def receiver_outage(minutes: float) -> Row:
    """Pushing every second to a receiver that is down for the whole scenario."""
    registry = CollectorRegistry()
    gauge = Gauge("soak_series", "series", ["n"], registry=registry)
    for n in range(500):
        gauge.labels(str(n)).set(n)
    client = RemoteWriteClient("http://127.0.0.1:9/api/v1/write", timeout=1.0)
    pusher = MetricsPusher(client, registry, 1.0, {"job": "soak"})
    pusher.start()
    await asyncio.sleep(minutes * 60)
    queued = registry.get_sample_value("qw_remote_write_queue_length") or 0
    dropped = registry.get_sample_value(
        "qw_remote_write_samples_total", {"outcome": "dropped"}
    ) or 0  # fmt: skip
    pusher.stop(flush=False)
    return {
        "scenario": f"receiver outage, {minutes:g} min",
        "injected": f"receiver down {minutes:g} min, 500 series pushed every 1 s",
        "detected": f"{queued:.0f} snapshots queued (bounded: 600 s, 64 MiB)",
        "lost": f"{dropped:.0f} samples dropped (older than the 10 min backlog)",
        "peak RSS": f"{peak_rss_mb():.0f} MB",
    }


# The catalog outage: the writer keeps at most this many rows per table in memory, so an outage
# of a minute or more at the exchange's 5x rate spills (the default, 100,000, would hold them).
OUTAGE_BUFFER_ROWS = 1_000


async def catalog_outage(minutes: float) -> Row:
    """The live client, pipeline and storage writer against a real Postgres SQL catalog that
    is stopped for the middle half of the scenario and then started again."""
    scenario = f"catalog outage, {minutes:g} min"
    if postgres_bin() is None:
        return {"scenario": scenario, "injected": "skipped: needs Debian postgresql (initdb)"}
    with postgres_cluster() as cluster, tempfile.TemporaryDirectory(prefix="qw-soak-") as tmp:
        return await _catalog_outage(scenario, minutes, cluster, Path(tmp))


async def _catalog_outage(scenario: str, minutes: float, cluster: Cluster, tmp: Path) -> Row:
    # Imported here: the pipeline, pyiceberg and pyarrow would add ~150 MB to the peak RSS of
    # every other scenario.
    import pyarrow.parquet as pq  # noqa: PLC0415
    from quotewatch.pipeline.pipeline import Pipeline  # noqa: PLC0415
    from quotewatch.rows import TABLE_NAMES  # noqa: PLC0415
    from quotewatch.state import StateStore  # noqa: PLC0415
    from quotewatch.storage.catalog import CatalogConfig, build_catalog  # noqa: PLC0415
    from quotewatch.storage.reconcile import table_row_counts  # noqa: PLC0415
    from quotewatch.storage.spill import spill_files  # noqa: PLC0415
    from quotewatch.storage.writer import StorageWriter  # noqa: PLC0415

    config = CatalogConfig.resolve(
        tmp, new_database(cluster.uri, "soak"), (tmp / "warehouse").as_uri()
    )
    data_dir = tmp / "data"
    writer = StorageWriter(
        config, data_dir, flush_interval=1.0, flush_rows=500, buffer_rows=OUTAGE_BUFFER_ROWS
    )
    session = FeedSession(Feed.EXCHANGE, products=PRODUCTS, drop_unsubscribed=True)
    pipeline = Pipeline(PRODUCTS, StateStore(), writer)
    session.consumers.append(pipeline.process)
    up, down = minutes * 60 * 0.25, minutes * 60 * 0.5
    async with LocalExchange(PRODUCTS, seed=18, rate=5.0) as ex:
        client = FeedClient(session, url=ex.exchange_url)
        task = asyncio.create_task(client.run())
        await asyncio.sleep(up)
        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(down)
        await asyncio.to_thread(cluster.start)
        await asyncio.sleep(minutes * 60 - up - down)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    pipeline.close()
    counts = await asyncio.to_thread(writer.close, 60.0)
    produced = pipeline.stats.rows
    stored = table_row_counts(build_catalog(config))
    # Spilled rows not yet recovered are not lost: the next start commits them.
    waiting = {
        t: sum(pq.read_metadata(f).num_rows for f in spill_files(data_dir, t)) for t in TABLE_NAMES
    }
    spilled = sum(counts[t].spilled for t in TABLE_NAMES)
    lost = sum(max(0, produced[t] - stored[t] - waiting[t]) for t in TABLE_NAMES)
    twice = sum(max(0, stored[t] - produced[t]) for t in TABLE_NAMES)
    completeness = min(stored[t] / produced[t] for t in TABLE_NAMES if produced[t])
    return {
        "scenario": scenario,
        "injected": f"Postgres catalog stopped for {down / 60:g} min of {minutes:g} "
        f"({sum(produced.values()):,} rows produced)",
        "detected": f"{spilled:,} rows spilled, {spilled - sum(waiting.values()):,} recovered "
        f"in the run ({sum(waiting.values()):,} left for the next start)",
        "lost": f"{lost:,} rows lost, {twice:,} stored twice; completeness {completeness:.2%}",
        "peak RSS": f"{peak_rss_mb():.0f} MB",
    }


def _fuzzed(rng: random.Random) -> str:
    feed_pool = EXCHANGE if rng.random() < 0.5 else ADVANCED
    msg: Any = copy.deepcopy(feed_pool[rng.choice(sorted(feed_pool))])
    kind = rng.randrange(6)
    if kind == 0:
        text = json.dumps(msg)
        return text[: rng.randrange(len(text))]
    if kind == 1:
        key = rng.choice(sorted(msg))
        msg[key] = rng.choice([None, 2**63, -1, "0.-10000", "NaN", [], {}, "x" * 1000])
    elif kind == 2:
        msg.pop(rng.choice(sorted(msg)), None)
    elif kind == 3:
        key = rng.choice(sorted(msg))
        depth = rng.choice([10, 500, 1000])
        return json.dumps({**msg, key: "\u0000"}).replace('"\\u0000"', "[" * depth + "]" * depth)
    return json.dumps(msg)


async def fuzz(frames: int) -> Row:
    """`frames` mutated frames of both feeds through a session each, yielding to the event loop
    after every frame as a live feed's read loop does, so the loop lag is one frame's hold."""
    rng = random.Random(18)
    sessions = {feed: FeedSession(feed, products=PRODUCTS, drop_unsubscribed=True) for feed in Feed}
    invalid = crashed = 0
    for n in range(frames):
        feed = Feed.EXCHANGE if n % 2 else Feed.ADVANCED
        try:
            result = sessions[feed].handle_frame(_fuzzed(rng), 1_780_000_000_000_000 + n)
            invalid += isinstance(result, Invalid)
        except Exception:
            crashed += 1
        await asyncio.sleep(0)
    return {
        "scenario": f"fuzz, {frames:,} frames",
        "injected": f"{frames:,} mutated frames (truncated, bad values, missing fields, nested)",
        "detected": f"{invalid:,} counted invalid, the rest parsed",
        "lost": f"{crashed} raised",
        "peak RSS": f"{peak_rss_mb():.0f} MB",
    }


COLUMNS = ("scenario", "injected", "detected", "lost", "peak RSS", "p99 loop lag")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of timed scenarios")
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames to fuzz")
    args = parser.parse_args(argv)
    scenarios: list[Callable[[], Coroutine[Any, Any, Row]]] = [
        lambda: feed_faults(args.minutes),
        lambda: receiver_outage(args.minutes),
        lambda: fuzz(args.frames),
        # Last: it loads the pipeline and the Postgres driver, and peak RSS only ever goes up.
        lambda: catalog_outage(args.minutes),
    ]
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for scenario in scenarios:
        started = time.monotonic()
        with tuned_for_feed():
            row = asyncio.run(with_lag(scenario()))
        row["scenario"] += f" ({time.monotonic() - started:.0f} s)"
        print("| " + " | ".join(row.get(c, "") for c in COLUMNS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
