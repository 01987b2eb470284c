"""Record from the local exchange, replay the file: the summary reports exactly what was
injected, through the same parse -> book -> tracker path as live."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from quotewatch.cli import COMMANDS
from quotewatch.cli import record as record_cli
from quotewatch.cli import replay as replay_cli
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.record import Recorder
from quotewatch.ingest.replay import ReplayError, detect_recording_feed, replay
from quotewatch.ingest.session import FeedSession
from quotewatch.simulate.faults import Faults
from quotewatch.simulate.server import LocalExchange
from support.coinbase_messages import EXCHANGE
from support.ingest import run_client, runs

PRODUCTS = ("BTC-USD", "ETH-USD")


def main(argv: list[str]) -> int:
    """`quotewatch record|replay ...` without importing every other command's dependencies."""
    assert {"record", "replay"} <= set(COMMANDS)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(required=True)
    record_cli.register(sub)
    replay_cli.register(sub)
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


FAULTS = Faults(drop_matches=0.08, drop_frames=0.04, duplicates=0.02, malformed=0.03)


def record(path: Path, feed: Feed) -> tuple[dict[str, Any], dict[str, Any]]:
    """Record a run; returns the live summary material and what the exchange injected."""

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with LocalExchange(PRODUCTS, seed=21, speed=6.0, faults=FAULTS) as ex:

            def enough() -> bool:
                record = ex.injected.connections.get(0)
                if record is None or sum(map(len, ex.injected.dropped_trades.values())) < 3:
                    return False
                if feed is Feed.EXCHANGE:
                    return any(record.duplicated_trade_ids.values())
                return len(record.dropped_sequence_nums) >= 3 and record.duplicates > 0

            with Recorder(path) as recorder:
                session, _ = await run_client(
                    ex, feed, PRODUCTS, 1.2, taps=[recorder], until=enough
                )
            live = {
                "last_trade": {p: session.trades.tracker.last(p) for p in PRODUCTS},
                "last_seq": session.sequence.tracker.last(",".join(PRODUCTS)),
                "invalid": sum(session.stats.invalid.values()),
                "frames": session.stats.frames,
            }
            injected = {
                "missing": ex.injected.missing_trade_ids(0),
                "dropped_seq": ex.injected.connections[0].dropped_sequence_nums,
                "malformed": ex.injected.malformed,
                "duplicates": ex.injected.connections[0].duplicates,
                "duplicated_trade_ids": ex.injected.connections[0].duplicated_trade_ids,
            }
            return live, injected

    return asyncio.run(scenario())


def replay_summary(path: Path, tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "summary.json"
    assert main(["replay", str(path), "--summary-json", str(out), *extra]) == 0
    summary: dict[str, Any] = json.loads(out.read_text())
    return summary


def test_exchange_recording_replays_to_the_injected_trade_gaps(tmp_path: Path) -> None:
    path = tmp_path / "exchange.jsonl"
    live, injected = record(path, Feed.EXCHANGE)
    summary = replay_summary(path, tmp_path)
    assert summary["feed"] == "exchange"
    assert sum(summary["messages"].values()) == live["frames"]
    assert sum(summary["invalid"].values()) == injected["malformed"] == live["invalid"]
    for product in PRODUCTS:
        last = live["last_trade"][product]
        expected = [i for i in injected["missing"].get(product, []) if i <= last]
        got = summary["products"][product]
        assert got["trades_missed"] == len(expected)
        # A heartbeat may report the first ids of a run before the next trade shows the rest.
        assert runs(expected) <= got["trade_gaps"] <= runs(expected) + got["heartbeat_gaps"]
        assert got["trades"] > 0
        assert got["book_updates"] > 0
    assert sum(len(v) for v in injected["missing"].values()) >= 3
    assert summary["sequence"] == {"gaps": 0, "missed": 0, "duplicate_frames": 0}
    # Repeated matches reach no consumer, so each trade is stored once. The market was paused
    # and drained before the recording stopped, so every repeat sent was received.
    for product in PRODUCTS:
        repeated = len(injected["duplicated_trade_ids"].get(product, []))
        assert summary["products"][product]["duplicate_trades"] == repeated
    assert any(injected["duplicated_trade_ids"].values())
    assert summary["messages_per_s"] > 0


def test_advanced_recording_replays_to_the_injected_sequence_gaps(tmp_path: Path) -> None:
    path = tmp_path / "advanced.jsonl"
    live, injected = record(path, Feed.ADVANCED)
    summary = replay_summary(path, tmp_path, "--speed", "0")
    assert summary["feed"] == "advanced"
    expected = [s for s in injected["dropped_seq"] if s <= live["last_seq"]]
    assert len(expected) >= 2
    assert summary["sequence"] == {
        "gaps": runs(expected),
        "missed": len(expected),
        # Verbatim repeats carry an old sequence_num: skipped whole, trades and all.
        "duplicate_frames": injected["duplicates"],
    }
    assert sum(summary["invalid"].values()) == injected["malformed"]
    assert all(summary["products"][p]["resyncs"] >= 1 for p in PRODUCTS)


def test_bare_frames_and_bad_lines_replay(tmp_path: Path) -> None:
    path = tmp_path / "bare.jsonl"
    lines = [
        json.dumps(EXCHANGE["snapshot"]),
        json.dumps(EXCHANGE["l2update"]),
        '{"ts": 1700000000.5, "msg": "{\\"type\\":\\"l2update\\",\\"product_id\\""}',
        "not json at all",
        "",
        json.dumps({"ts": 1700000001.0, "msg": EXCHANGE["match"]}),
    ]
    path.write_text("\n".join(lines) + "\n")
    assert detect_recording_feed(path) is Feed.EXCHANGE
    summary = replay_summary(path, tmp_path)
    assert summary["messages"] == {"l2update": 1, "match": 1, "snapshot": 1, "unknown": 2}
    assert summary["invalid"] == {"malformed_json": 2}
    assert summary["products"]["BTC-USD"]["book_updates"] == 1


def test_unreadable_recordings_fail_clearly(tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 2
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"a": 1}\n')
    with pytest.raises(ReplayError, match="no Exchange or Advanced Trade messages"):
        detect_recording_feed(junk)


def test_record_command_writes_ts_and_msg_lines(tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl"

    async def scenario() -> int:
        async with LocalExchange(PRODUCTS, seed=3, speed=4.0) as ex:
            argv = ["record", "--feed", "advanced", "--products", "BTC-USD",
                    "--url", ex.advanced_url, "--out", str(out), "--duration", "0.8"]  # fmt: skip
            return await asyncio.to_thread(main, argv)

    assert asyncio.run(scenario()) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) > 5
    assert all(line.keys() == {"ts", "msg"} for line in lines)
    assert all(isinstance(line["ts"], float) and line["ts"] > 1.6e9 for line in lines)
    assert {line["msg"]["channel"] for line in lines} >= {"l2_data", "subscriptions"}


def test_speed_follows_the_recorded_pace(tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    beats = [{"ts": 1700000000.0 + 0.1 * i, "msg": {**EXCHANGE["heartbeat"], "last_trade_id": i}}
             for i in range(4)]  # fmt: skip
    path.write_text("".join(json.dumps(b) + "\n" for b in beats))

    async def timed_replay(speed: float) -> float:
        session = FeedSession(Feed.EXCHANGE, connection_label="*")
        result = await replay(path, session, speed=speed)
        assert result.frames == 4
        return result.duration_s

    # 0.3 s recorded at twice the pace takes at least 0.15 s; as fast as possible, much less.
    assert asyncio.run(timed_replay(2.0)) >= 0.14
    with pytest.raises(ReplayError, match="speed must be >= 0"):
        asyncio.run(timed_replay(-1.0))
