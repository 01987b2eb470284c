"""`kill -9` at random moments, again and again, then a restart: the raw tables hold every row
of every frame the frame log had on disk, once.

Real processes throughout: `quotewatch simulate` is the exchange, and each run is a
`quotewatch run` process killed with SIGKILL 0.5 to 6 s after it started (so some kills land
in start-up or in the previous run's replay). Between them sits a websocket proxy in this test
process that records every frame it forwards, before forwarding it: that recording, not the
log, is the oracle. After each kill the log on disk says how many frames the killed run
logged (its positions go on from the previous run's); those first frames of the run's
connection (a run's positions start where its start-up line says) are replayed by
`quotewatch replay` into a separate catalog, run by run, and the two
catalogs' raw tables must be equal. The receive time is the one thing the recording does not
have, so rows are compared without it (and a snapshot's row, whose event time is its receive
time, without that either).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quotewatch.wal.segments import read_segment, segment_paths
from support.simulate import simulate_process
from support.storage import read_table, wait_for
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

QUOTEWATCH = str(Path(sys.executable).parent / "quotewatch")
KILLS = 6
PRODUCTS = "BTC-USD,ETH-USD"


class RecordingProxy:
    """A loopback websocket proxy that keeps, per client connection, every frame it forwarded
    to the client (appended before it is sent)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.connections: list[list[str]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, compression=None, max_size=None) as srv:
            port = next(iter(srv.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/exchange"
            self._ready.set()
            await self._stop.wait()

    async def _handle(self, client: ServerConnection) -> None:
        frames: list[str] = []
        self.connections.append(frames)
        async with connect(self.upstream, compression=None, max_size=None) as upstream:

            async def down() -> None:
                async for message in upstream:
                    frames.append(str(message))
                    await client.send(message)

            async def up() -> None:
                async for message in client:
                    await upstream.send(message)

            tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            except ConnectionClosed:
                pass
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


def _more(proxy: RecordingProxy, than: int) -> Callable[[], bool]:
    return lambda: len(proxy.connections) > than


def _log_end(wal: Path) -> int:
    """The position after the last whole entry in the log on disk (0 for an empty log)."""
    paths = segment_paths(wal)
    return read_segment(paths[-1]).end if paths else 0


@contextmanager
def _run(data_dir: Path, url: str, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            QUOTEWATCH, "run", "--feed", "exchange", "--url", url, "--products", PRODUCTS,
            "--data-dir", str(data_dir), "--port", "0", "--no-dashboard",
            "--flush-interval", "0.5", "--backfill-max-ids", "0",
            "--wal-fsync-interval", "0.05", *extra,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def _key(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    values = dict(row)
    received = values.pop("received_at")
    if table == "raw_orderbook" and values["event_time"] == received:
        values["event_time"] = "snapshot"
    return tuple(values.values())


def _rows(data_dir: Path, table: str) -> list[tuple[Any, ...]]:
    return sorted((_key(table, row) for row in read_table(data_dir, table)), key=repr)


def test_kill_9_in_a_loop_loses_no_logged_frame(tmp_path: Path) -> None:
    rng = random.Random(13)
    data_dir = tmp_path / "run"
    logged: list[list[str]] = []  # per run that connected: the frames its log kept
    sim = ("--port", "0", "--products", PRODUCTS, "--seed", "5", "--rate", "4")
    with simulate_process(QUOTEWATCH, *sim) as exchange, RecordingProxy(exchange) as proxy:
        for kill in range(KILLS):
            connections = len(proxy.connections)
            with _run(data_dir, proxy.url) as proc:
                if kill % 2:  # let every other run connect before its random moment
                    wait_for(_more(proxy, connections), 60, "a connection")
                time.sleep(rng.uniform(0.5, 6.0))
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                assert proc.stdout is not None
                started = re.search(rb"this run's frames from position (\d+)", proc.stdout.read())
            if len(proxy.connections) > connections:
                assert len(proxy.connections) == connections + 1
                assert started is not None  # it connected only after its replay
                frames = proxy.connections[-1]
                # The run's positions: its connection start, then one per frame it logged.
                count = max(0, _log_end(data_dir / "wal") - int(started[1]) - 1)
                assert count <= len(frames)
                logged.append(frames[:count])
        assert sum(map(len, logged)) > 100, "the runs logged too few frames to prove much"
        assert sum(1 for frames in logged if frames) >= 3

        # A last start, against nothing: it replays what the last kill left, then stops.
        with _run(data_dir, "ws://127.0.0.1:9/exchange", "--duration", "1") as last:
            out, _ = last.communicate(timeout=120)
        assert last.returncode == 0, out.decode()
        summary = json.loads(out[out.rindex(b"\n{\n") :])
        assert summary["frame_log"]["recovery"]["error"] is None
        assert summary["frame_log"]["segments"] == 0  # everything replayed and committed

    oracle = tmp_path / "oracle"
    for k, frames in enumerate(logged):
        recording = tmp_path / f"run{k}.jsonl"
        recording.write_text("".join(f"{frame}\n" for frame in frames))
        replay = subprocess.run(
            [QUOTEWATCH, "replay", str(recording), "--data-dir", str(oracle)],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stderr.decode()

    trade_ids = [row["trade_id"] for row in read_table(data_dir, "raw_trades")]
    assert len(trade_ids) == len(set(trade_ids)), "a trade stored twice"
    for table in ("raw_orderbook", "raw_trades"):
        got, want = _rows(data_dir, table), _rows(oracle, table)
        assert got == want, f"{table}: {len(got)} rows stored, {len(want)} in the recording"
