"""The runner end to end: local exchange over loopback websockets, pipeline, real Iceberg
storage, /metrics, a real Prometheus receiving the pushes; shutdown on SIGINT and in order."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from quotewatch.app.runner import Runner, RunOptions
from quotewatch.cli import main
from quotewatch.config import Settings
from quotewatch.ingest.client import FeedClient
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.replay import replay
from quotewatch.pipeline.pipeline import PipelineConfig
from quotewatch.simulate.server import LocalExchange
from quotewatch.storage.catalog import CatalogConfig, build_catalog
from quotewatch.storage.spill import recover
from quotewatch.storage.tables import ensure_tables
from support.exchange_frames import exchange_frames
from support.prometheus import running_prometheus
from support.storage import read_table, wait_for, warehouse_outage

TABLES = ("raw_orderbook", "raw_trades", "features", "predictions")


def counter(name: str, table: str) -> float:
    return REGISTRY.get_sample_value(name, {"table": table}) or 0.0


def test_sigint_stops_feed_then_drains_flushes_and_serves_metrics_meanwhile(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, port=0, products=("BTC-USD",))
    runner = Runner(
        settings, Feed.EXCHANGE, RunOptions(dashboard=False),
        config=PipelineConfig(warmup_per_class=5),
    )  # fmt: skip
    scraped: dict[str, Any] = {}

    async def feed() -> None:
        async with LocalExchange(("BTC-USD",), seed=5, rate=5.0) as ex:
            client = FeedClient(runner.session, url=ex.exchange_url)
            task = asyncio.create_task(client.run())
            # Run until the model predicts (how fast depends on the simulated market's moves),
            # then stop in the middle of the stream.
            for _ in range(300):
                await asyncio.sleep(0.1)
                product = runner.store.current().products.get("BTC-USD")
                if product is not None and product.probability is not None:
                    break
            await asyncio.sleep(0.5)
            response = await asyncio.to_thread(httpx.get, f"{runner.url}/metrics", timeout=5)
            scraped["status"] = response.status_code
            scraped["text"] = response.text
            os.kill(os.getpid(), signal.SIGINT)  # the runner's handler takes it, not pytest
            await task

    summary = asyncio.run(runner.run(feed))

    assert scraped["status"] == 200
    for name in ("pipeline_message_latency_seconds_bucket", "orderbook_updates_per_second",
                 'pipeline_callback_duration_seconds_count{stage="features"}',
                 "labeler_buffer_capacity", "trade_buffer_size", "process_cpu_seconds_total",
                 "pipeline_event_loop_lag_seconds_count"):  # fmt: skip
        assert name in scraped["text"]
    pipeline = summary["pipeline"]
    assert pipeline["samples"] > 20
    assert pipeline["latency_p50_ms"] is not None
    # Drained before the storage flush: every row expected was committed, predictions included.
    storage = summary["storage"]
    assert storage["rows_written"] == pipeline["rows_expected"]
    assert storage["rows_written"]["predictions"] == pipeline["predictions"] > 0
    assert runner.server is None  # stopped last
    assert runner.store.current().products["BTC-USD"].mid is not None


@pytest.mark.prometheus
def test_demo_command_pushes_final_counts_after_the_storage_flush(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    # Counters are per process: other tests in it may have counted already.
    before = {t: counter("pipeline_rows_expected_total", t) for t in TABLES}
    written_before = {t: counter("iceberg_rows_written_total", t) for t in TABLES}
    with running_prometheus() as prom:
        status = main([
            "demo", "--duration", "3", "--no-dashboard", "--port", "0", "--rate", "3",
            "--data-dir", str(tmp_path / "data"), "--push-url", prom.remote_write_url,
            "--push-interval", "60", "--summary-json", str(summary_path),
        ])  # fmt: skip
        assert status == 0
        summary = json.loads(summary_path.read_text())
        expected = summary["pipeline"]["rows_expected"]
        written = summary["storage"]["rows_written"]
        assert written == expected
        assert all(v == 1.0 for t, v in summary["storage"]["completeness"].items() if expected[t])
        # With a 60 s interval, the only pushes are the first and the final one: the final one
        # happened after the pipeline drained and storage flushed, so it carries the totals.
        # Its staleness markers end the series right after it: read the last value before them.
        pushed = prom.query_values(
            'last_over_time(pipeline_rows_expected_total{job="quotewatch"}[5m])', by="table"
        )
        assert {t: int(v - before[t]) for t, v in pushed.items()} == expected
        rows = prom.query_values(
            'last_over_time(iceberg_rows_written_total{job="quotewatch"}[5m])', by="table"
        )
        assert {t: int(v - written_before[t]) for t, v in rows.items()} == {
            t: n for t, n in written.items() if t in rows
        }
    assert summary["model"].keys() >= {"ready", "accuracy_recent"}
    assert summary["pipeline"].keys() >= {
        "samples", "labels", "predictions", "evictions", "latency_p50_ms", "latency_p99_ms"
    }  # fmt: skip


def test_a_replay_runs_through_the_pipeline_and_ends_the_run(tmp_path: Path) -> None:
    recording = tmp_path / "rec.jsonl"
    frames = exchange_frames(("BTC-USD", "ETH-USD"), seconds=20.0, rate=2.0)
    recording.write_text(
        "".join(json.dumps({"ts": us / 1e6, "msg": text}) + "\n" for text, us in frames)
    )
    settings = Settings(data_dir=tmp_path, port=0)
    runner = Runner(
        settings, Feed.EXCHANGE, RunOptions(storage=False, dashboard=False, replay=True)
    )
    summary = asyncio.run(runner.run(lambda: replay(recording, runner.session)))
    # Every product of the recording is followed, whatever the settings name.
    assert set(runner.pipeline.products) == {"BTC-USD", "ETH-USD"}
    assert summary["pipeline"]["samples"] == sum(
        p["book_updates"] + 1 for p in summary["products"].values()
    )
    assert "storage" not in summary
    # Replay latency is measured from processing, not from the recorded (past) receive time.
    assert summary["pipeline"]["latency_p99_ms"] < 1000


def test_shutdown_keeps_its_budget_and_spills_what_storage_cannot_take(tmp_path: Path) -> None:
    recording = tmp_path / "rec.jsonl"
    frames = exchange_frames(("BTC-USD",), seconds=10.0, rate=2.0)
    recording.write_text(
        "".join(json.dumps({"ts": us / 1e6, "msg": text}) + "\n" for text, us in frames)
    )
    # No timed flush: every row is still in memory when the run stops.
    settings = Settings(data_dir=tmp_path, port=0, flush_interval=3600, flush_rows=100_000)
    runner = Runner(
        settings, Feed.EXCHANGE, RunOptions(dashboard=False, replay=True, shutdown_budget=3.0)
    )
    assert runner.writer is not None
    writer = runner.writer
    outage = warehouse_outage(tmp_path)

    async def feed() -> None:
        await asyncio.to_thread(wait_for, lambda: writer.storage_open, 30, "storage to open")
        await replay(recording, runner.session)
        outage.__enter__()  # storage goes down just as the run stops

    started = time.monotonic()
    try:
        summary = asyncio.run(runner.run(feed))
        elapsed = time.monotonic() - started
    finally:
        outage.__exit__(None, None, None)
    expected = summary["pipeline"]["rows_expected"]
    assert expected["raw_orderbook"] > 50
    assert summary["storage"]["rows_written"]["raw_orderbook"] == 0
    assert elapsed < 3.0 + 1.0  # the budget, plus the replay itself
    # Nothing is lost: the spill files hold every row, and the next start commits them.
    recovered = recover(tmp_path, ensure_tables(build_catalog(CatalogConfig.resolve(tmp_path))))
    for table in TABLES:
        assert recovered[table] == expected[table], table
        assert len(read_table(tmp_path, table)) == expected[table], table


def test_a_live_run_drops_unsubscribed_products_and_a_replay_follows_them(tmp_path: Path) -> None:
    # The runner's session used to follow every product a live feed sent (issue 18).
    settings = Settings(data_dir=tmp_path, port=0, products=("BTC-USD",))
    frames = exchange_frames(("BTC-USD", "ETH-USD"), seconds=5.0, rate=2.0)
    live = Runner(settings, Feed.EXCHANGE, RunOptions(storage=False, dashboard=False))
    replayed = Runner(
        settings, Feed.EXCHANGE, RunOptions(storage=False, dashboard=False, replay=True)
    )
    for text, received_us in frames:
        live.session.handle_frame(text, received_us)
        replayed.session.handle_frame(text, received_us)
    assert set(live.session.books) == {"BTC-USD"}
    assert live.session.stats.invalid["unsubscribed_product"] > 0
    assert set(replayed.session.books) == {"BTC-USD", "ETH-USD"}
