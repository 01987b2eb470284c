"""Pipeline speed: end-to-end replay throughput, instrumentation cost, and latency under load.

1. **Throughput**: a recording of the simulated market (Exchange `level2`, one `l2update` per
   book change, plus matches and heartbeats) replayed at speed 0 through the full path:
   parse -> book -> features -> predict -> label -> train -> enqueue for storage (a real
   `StorageWriter` whose flush threshold is out of reach, so only the enqueue is measured).
   Messages/s by wall clock and by process CPU time (steadier on a shared machine).
   Target: >= 25,000 messages/s with all metrics on.
2. **Instrumentation cost**: the same replay with metrics on and with `QW_METRICS_DISABLED=1`,
   each in its own subprocess, alternating; the medians compared, and the median of each
   metrics-on run against the metrics-off run before it (with quartiles, to show the noise).
   Time on this shared machine varies by about 20% from one process to the next, so the two
   modes are also compared inside one process (the wrappers taken out and put back, ABBA), by
   the instructions they execute (valgrind's cachegrind, where installed), which do not vary,
   and against the per-call cost of the decorators a message crosses.
   Target: <= 3%.
3. **Latency under load**: `quotewatch simulate` in its own process at 10x the normal rate,
   `quotewatch`'s runner (feed client, pipeline, storage, /metrics) connected to it for a while;
   latency from frame receipt to the state swap, measured exactly per message by a consumer
   placed after the pipeline. Target: p99 <= 1 ms.

Run: `uv run --locked python benchmarks/bench_pipeline.py [--rounds 10] [--seconds 600]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quotewatch.storage.writer import StorageWriter

START_US = 1_767_225_600_000_000
LABEL_THRESHOLD = 0.0001  # the default 0.01%


def write_recording(path: Path, seconds: float, rate: float) -> int:
    """Write `seconds` of simulated Exchange level2 traffic as a `quotewatch record` file."""
    from quotewatch.simulate.exchange_protocol import ExchangeSession
    from quotewatch.simulate.market import Market

    market = Market(("BTC-USD",), seed=3, start_us=START_US, depth=1000, rate=rate)
    session = ExchangeSession(market, random.Random(3), auth_secret=None)
    subscribe = {
        "type": "subscribe", "product_ids": ["BTC-USD"],
        "channels": ["level2", "matches", "heartbeat"],
        "signature": "s", "key": "k", "passphrase": "p", "timestamp": "1",
    }  # fmt: skip
    frames = 0
    with path.open("w") as f:
        for frame in session.handle(json.dumps(subscribe)):
            f.write(json.dumps({"ts": START_US / 1e6, "msg": frame.text}) + "\n")
            frames += 1
        t, end = START_US, START_US + int(seconds * 1e6)
        while t < end:
            t += 50_000
            for frame in session.on_events(market.advance(t)):
                f.write(json.dumps({"ts": t / 1e6, "msg": frame.text}) + "\n")
                frames += 1
    return frames


def child_throughput(recording: Path) -> None:
    """Replay `recording` through the full pipeline; print one JSON line of timings."""
    with tempfile.TemporaryDirectory() as tmp:
        _, replay_once = replayer(recording, Path(tmp))
        print(json.dumps(replay_once()))
        # The writer's daemon thread is left to die with the process: committing is not timed.


def replayer(recording: Path, data: Path) -> tuple[StorageWriter, Callable[[], dict[str, float]]]:
    """A storage writer under `data`, and a function that replays `recording` through a new
    pipeline into it each time and returns the replay's timings; only the replay is timed."""
    from quotewatch.app.process_tuning import tuned_for_feed
    from quotewatch.ingest.parser import Feed
    from quotewatch.ingest.replay import replay
    from quotewatch.ingest.session import FeedSession
    from quotewatch.pipeline.pipeline import Pipeline, PipelineConfig
    from quotewatch.state import StateStore
    from quotewatch.storage.catalog import CatalogConfig
    from quotewatch.storage.writer import StorageWriter

    writer = StorageWriter(
        CatalogConfig.resolve(data), data, flush_rows=10**8, buffer_rows=10**8,
        flush_interval=3600.0,
    )  # fmt: skip
    writer.flush(30.0)  # let its start-up pass (catalog, tables) finish before timing

    def replay_once() -> dict[str, float]:
        session = FeedSession(Feed.EXCHANGE, products=("BTC-USD",))
        pipeline = Pipeline(
            ("BTC-USD",), StateStore(), writer, PipelineConfig(label_threshold=LABEL_THRESHOLD),
            replay=True,
        )  # fmt: skip
        session.consumers.append(pipeline.process)
        # The process settings `quotewatch run` and `demo` apply (GC thresholds, switch interval).
        with tuned_for_feed():
            cpu, wall = time.process_time(), time.perf_counter()
            result = asyncio.run(replay(recording, session, speed=0.0))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        pipeline.close()
        stats = pipeline.stats
        return {
            "frames": result.frames, "wall": wall, "cpu": cpu, "predictions": stats.predictions,
            "trained": sum(sum(p.classifier.state().class_counts)
                           for p in pipeline.products.values()),
        }  # fmt: skip

    return writer, replay_once


def child_paired(recording: Path, rounds: int) -> None:
    """In one process with metrics on, replay `recording` with qw_metrics' wrappers in place and
    with them taken out, ABBA then BAAB; print one JSON line of the CPU times, per mode.

    Separate processes differ in speed by about 20% on a shared machine (memory layout, the
    machine's load), which swamps a cost of a few percent. Here both modes share one process,
    and each round's order cancels a steady drift. Taking the wrappers out is what
    QW_METRICS_DISABLED=1 does at import: the decorated names are bound to the plain functions
    (quotewatch has no `with timed(...)` blocks, and track_buffer costs nothing per message).
    """
    import quotewatch.app.runner  # noqa: F401  (everything `run` imports, so all is decorated)

    sites = wrapped_sites("quotewatch")
    with tempfile.TemporaryDirectory() as tmp:
        writer, replay_once = replayer(recording, Path(tmp))
        cpu: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(rounds):
            for on in (True, False, False, True) if i % 2 == 0 else (False, True, True, False):
                for owner, name, wrapped, plain in sites:
                    setattr(owner, name, wrapped if on else plain)
                cpu["on" if on else "off"].append(replay_once()["cpu"])
                writer.flush(120.0)  # commit the rows (untimed), so memory stays flat
        print(json.dumps({"sites": len(sites), **cpu}))


def wrapped_sites(package: str) -> list[tuple[object, str, object, object]]:
    """(owner, name, wrapper, plain) for every name in `package`'s modules and classes bound to a
    qw_metrics wrapper: a C ObservedCall or one of qw_metrics._wrappers' closures."""

    def plain(value: object) -> object | None:
        if isinstance(value, staticmethod | classmethod):
            inner = plain(value.__func__)
            return None if inner is None else type(value)(inner)  # type: ignore[arg-type]
        code = getattr(value, "__code__", None)
        closure = code is not None and code.co_filename == _wrappers.__file__
        if closure or (_values.BUILT and isinstance(value, _values.ObservedCall)):
            return value.__wrapped__  # type: ignore[attr-defined, no-any-return]
        return None

    from qw_metrics import _values, _wrappers

    sites = []
    for module_name, module in list(sys.modules.items()):
        if module_name != package and not module_name.startswith(package + "."):
            continue
        owners = [module] + [
            v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module_name
        ]
        for owner in owners:
            for name, value in list(vars(owner).items()):
                unwrapped = plain(value)
                if unwrapped is not None:
                    sites.append((owner, name, value, unwrapped))
    return sites


def run_child(args: list[str], disabled: bool) -> dict[str, Any]:
    env = dict(os.environ, QW_METRICS_DISABLED="1" if disabled else "0")
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def child_latency(url: str, seconds: float, data_dir: str) -> None:
    """Run the runner against `url` for `seconds`; print exact latency percentiles."""
    from quotewatch.app.runner import Runner, RunOptions
    from quotewatch.config import Settings
    from quotewatch.ingest.auth import ExchangeCredentials
    from quotewatch.ingest.client import FeedClient
    from quotewatch.ingest.parser import Feed
    from quotewatch.pipeline.pipeline import PipelineConfig

    settings = Settings(data_dir=Path(data_dir), port=0)
    runner = Runner(
        settings, Feed.EXCHANGE, RunOptions(dashboard=False, duration=seconds),
        config=PipelineConfig(label_threshold=LABEL_THRESHOLD),
    )  # fmt: skip
    latencies: list[float] = []

    def after_pipeline(event: object, _book: object) -> None:
        received_us = getattr(event, "received_us", None)
        if received_us is not None and type(event).__name__ in ("BookUpdate", "Trade"):
            latencies.append(time.time() - received_us / 1e6)

    runner.session.consumers.append(after_pipeline)
    # Credentials (any, the local exchange checks none) get the unbatched level2 channel.
    credentials = ExchangeCredentials("key", "c2VjcmV0", "pass")
    client = FeedClient(runner.session, url=url, credentials=credentials)
    summary = runner.run(client.run)
    result = asyncio.run(summary)
    latencies.sort()
    n = len(latencies)
    print(json.dumps({
        "messages": n,
        "p50_ms": latencies[n // 2] * 1e3 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1e3 if n else None,
        "max_ms": latencies[-1] * 1e3 if n else None,
        "hist_p99_ms": result["pipeline"]["latency_p99_ms"],
        "rate": n / seconds,
        "completeness": result.get("storage", {}).get("completeness"),
    }))  # fmt: skip


@contextmanager
def simulator(rate: float, seconds: float) -> Iterator[str]:
    """`quotewatch simulate` for BTC-USD at `rate` in its own process, for `seconds`; yields
    its Exchange websocket URL."""
    sim = subprocess.Popen(
        [str(Path(sys.executable).parent / "quotewatch"), "simulate", "--products", "BTC-USD",
         "--rate", str(rate), "--duration", str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            match = re.search(r"(ws://\S+/exchange)", sim.stdout.readline())
            url = match.group(1) if match else None
        if url is None:
            raise RuntimeError("quotewatch simulate did not print its URL")
        yield url
    finally:
        sim.terminate()
        sim.wait(10)


def latency_run(seconds: float, rate: float) -> dict[str, float]:
    with simulator(rate, seconds + 30) as url, tempfile.TemporaryDirectory() as tmp:
        return run_child(["--child-latency", url, str(seconds), tmp], disabled=False)


def instruction_counts(recording: Path, tmp: Path) -> dict[str, int] | None:
    """Instructions the replay of `recording` executes with metrics on and off, counted by
    valgrind (cachegrind) net of replaying an empty recording; None without valgrind.

    Time on a shared machine varies by about 20% from run to run, far more than the few
    percent being measured; the instruction count of a run does not, and the two modes run
    at once, one per core, since counts do not depend on what else the machine is doing.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    empty = tmp / "empty.jsonl"
    write_recording(empty, 0.0, rate=3.0)

    def start(mode: str, replayed: Path) -> subprocess.Popen[str]:
        env = dict(os.environ, QW_METRICS_DISABLED="1" if mode == "off" else "0")
        env["PYTHONHASHSEED"] = "0"  # the same dict layouts in every run
        out = tmp / f"cachegrind.{mode}.{replayed.stem}"
        command = [
            valgrind, "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
            sys.executable, __file__, "--child-throughput", str(replayed),
        ]  # fmt: skip
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    def total(run: subprocess.Popen[str]) -> int:
        _, err = run.communicate()
        found = re.search(r"I\s+refs:\s+([\d,]+)", err)
        if run.returncode != 0 or found is None:
            raise RuntimeError(f"valgrind run failed:\n{err[-3000:]}")
        return int(found[1].replace(",", ""))

    totals: dict[tuple[str, Path], int] = {}
    for replayed in (recording, empty):
        runs = {mode: start(mode, replayed) for mode in ("on", "off")}
        totals.update({(mode, replayed): total(run) for mode, run in runs.items()})
    return {mode: totals[mode, recording] - totals[mode, empty] for mode in ("on", "off")}


def layer_costs() -> dict[str, float]:
    """Print the cost of one call through each kind of decorator the per-message path crosses;
    return each one's cost net of a bare call, in ns."""
    import timeit

    from quotewatch.metrics import MESSAGE_LATENCY
    from qw_metrics import recorded, seconds_since, timed

    def bare(x: int) -> int:
        return x

    # Frame and trade counts and the newest-trade gauges are reported in batches (0.25 s), so
    # these are the only decorated calls per message.
    layers = {
        "bare": ("bare function call", bare),
        "timed": ("timed(stage=...)  (x5 per book update)", timed(stage="bench")(bare)),
        "recorded": (
            "recorded(latency histogram)  (x1)",
            recorded(MESSAGE_LATENCY, value=seconds_since)(bare),
        ),
    }
    n = 200_000
    print(f"{'one call through':42} {'ns':>12} {'net ns':>12}")
    raw: dict[str, float] = {}
    for key, (name, fn) in layers.items():
        raw[key] = min(timeit.repeat(lambda fn=fn: fn(1), number=n, repeat=3)) / n * 1e9
        print(f"{name:42} {raw[key]:12,.0f} {raw[key] - raw['bare']:12,.0f}")
    return {key: ns - raw["bare"] for key, ns in raw.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="simulated seconds in the recording")  # fmt: skip
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--child-throughput", type=Path)
    parser.add_argument("--child-paired", nargs=2)
    parser.add_argument("--child-latency", nargs=3)
    args = parser.parse_args()
    if args.child_throughput:
        child_throughput(args.child_throughput)
        return
    if args.child_paired:
        child_paired(Path(args.child_paired[0]), int(args.child_paired[1]))
        return
    if args.child_latency:
        url, seconds, data_dir = args.child_latency
        child_latency(url, float(seconds), data_dir)
        return

    if args.latency_only:
        latency_report(args.latency_seconds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "sim.jsonl"
        frames = write_recording(recording, args.seconds, rate=3.0)
        print(f"recording: {frames} frames ({args.seconds:g} simulated s at 3x rate)")
        on: list[dict[str, float]] = []
        off: list[dict[str, float]] = []
        for _ in range(args.rounds):
            off.append(run_child(["--child-throughput", str(recording)], disabled=True))
            on.append(run_child(["--child-throughput", str(recording)], disabled=False))
        paired_run = run_child(["--child-paired", str(recording), str(args.rounds)], disabled=False)
        instructions = instruction_counts(recording, Path(tmp))

    def rate(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r["frames"] / r[key] for r in runs)

    print()
    print(f"{'replay at speed 0, full pipeline':42} {'wall msg/s':>12} {'cpu msg/s':>12}")
    print(f"{'metrics on':42} {rate(on, 'wall'):12,.0f} {rate(on, 'cpu'):12,.0f}")
    print(f"{'metrics off (QW_METRICS_DISABLED=1)':42} {rate(off, 'wall'):12,.0f} "
          f"{rate(off, 'cpu'):12,.0f}")  # fmt: skip
    for key in ("wall", "cpu"):
        cost = 1 - rate(on, key) / rate(off, key)
        print(f"instrumentation cost ({key}, medians of {args.rounds} runs each): {cost:.1%}")
    # Each metrics-on run (a) against the metrics-off run (b) just before it: drift in the machine's
    # speed over the benchmark cancels out, and the quartiles show how noisy the rounds were.
    paired = [1 - b["cpu"] / a["cpu"] for a, b in zip(on, off, strict=True)]
    low, mid, high = statistics.quantiles(paired, n=4)
    print(f"instrumentation cost (cpu, median of {args.rounds} pairs): {mid:.1%} "
          f"(quartiles {low:.1%} .. {high:.1%})")  # fmt: skip
    # Each ABBA round: both of its metrics-on replays against both of its metrics-off ones.
    rounds_on = [sum(paired_run["on"][i : i + 2]) for i in range(0, len(paired_run["on"]), 2)]
    rounds_off = [sum(paired_run["off"][i : i + 2]) for i in range(0, len(paired_run["off"]), 2)]
    one = [1 - b / a for a, b in zip(rounds_on, rounds_off, strict=True)]
    low, mid, high = statistics.quantiles(one, n=4)
    print(f"instrumentation cost (cpu, one process, {paired_run['sites']:.0f} wrappers in and out, "
          f"{args.rounds} ABBA rounds): {mid:.1%} (quartiles {low:.1%} .. {high:.1%})")  # fmt: skip
    print(f"predictions made per run: {on[-1]['predictions']:.0f}; "
          f"samples trained: {on[-1]['trained']:.0f}")  # fmt: skip
    print()
    if instructions is None:
        print("instrumentation cost (instructions): skipped, valgrind is not on PATH "
              "(apt-get install valgrind)")  # fmt: skip
    else:
        on_i, off_i = (instructions[mode] / frames for mode in ("on", "off"))
        print(f"instructions a message (valgrind; replay, net of start-up): metrics on "
              f"{on_i:,.0f}, off {off_i:,.0f}")  # fmt: skip
        print(f"instrumentation cost (instructions): {1 - off_i / on_i:.1%}")
    print()
    per_call = layer_costs()
    # Five stage timers and the latency histogram per book update; the rest is batched.
    expected_ns = 5 * per_call["timed"] + per_call["recorded"]
    off_ns = 1e9 / rate(off, "cpu")
    print(f"expected from the per-call costs: {expected_ns:.0f} ns of {off_ns:,.0f} ns a "
          f"message = {expected_ns / off_ns:.1%}")  # fmt: skip

    print()
    latency_report(args.latency_seconds)


def latency_report(seconds: float) -> None:
    lat = latency_run(seconds, rate=10.0)
    print(f"{'latency frame -> state, simulator at 10x':42} {'value':>12}")
    for key in ("messages", "rate", "p50_ms", "p99_ms", "max_ms", "hist_p99_ms"):
        value = lat[key]
        print(f"{key:42} {'n/a' if value is None else f'{value:12,.3f}':>12}")
    print(f"storage completeness: {lat['completeness']}")


if __name__ == "__main__":
    main()
