"""Remote-write snapshot -> compressed request bytes: qw-metrics vs the OpenTelemetry exporter.

    uv run --locked python benchmarks/bench_remote_write.py [--rounds N] [--no-otel]

Workload: 200 labelled histograms (Prometheus' default buckets), 1,000 labelled counters and
1,000 labelled gauges = 5,400 samples per snapshot, in prometheus_client metrics; and the same
with the histograms and counters as qw_metrics' lean ones. Collection (prometheus_client
``registry.collect()`` / the OTel reader) is timed on its own; "encode" is everything after it
up to the snappy-compressed bytes. The whole path is what a push does: qw-metrics reads the
registry straight into the encoder (``read_registry``), the OTel exporter collects and
translates. The OTel side runs in its own isolated environment
(benchmarks/_otel_rw_peer.py) so it never enters the workspace lock. Medians of the measuring
thread's CPU time (time.thread_time), one core, so other load on a shared machine skews less.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import qw_metrics
from _cpu_time import median_seconds
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from qw_metrics.remote_write.collect import read_registry
from qw_metrics.remote_write.encode import WriteRequestEncoder

PEER = Path(__file__).with_name("_otel_rw_peer.py")
PEER_COMMAND = [
    "uv",
    "run",
    "--isolated",
    "--no-project",
    "--with",
    "opentelemetry-exporter-prometheus-remote-write",
    "--with",
    "opentelemetry-sdk",
    "python",
    str(PEER),
]
LABELS = {"job": "bench", "instance": "bench-host", "environment": "bench"}
TARGET_RATIO = 10.0
TARGET_RATE = 1_000_000.0
TARGET_WHOLE_S = 0.008
TARGET_WHOLE_RATIO = 12.0


def build_registry(lean: bool = False) -> tuple[CollectorRegistry, Callable[[int], None]]:
    registry = CollectorRegistry()
    histogram_type: Any = qw_metrics.Histogram if lean else Histogram
    counter_type: Any = qw_metrics.Counter if lean else Counter
    histogram = histogram_type(
        "bench_latency_seconds", "l", ["stage", "product"], registry=registry
    )
    counter = counter_type("bench_events", "e", ["kind", "product"], registry=registry)
    gauge = Gauge("bench_level", "g", ["kind", "product"], registry=registry)

    def update(step: int) -> None:
        for i in range(200):
            child = histogram.labels(f"stage{i % 10}", f"P-{i}")
            for k in range(5):
                child.observe(0.001 * (i + k + step))
        for i in range(1000):
            counter.labels(f"k{i % 10}", f"P-{i}").inc(i + 1)
            gauge.labels(f"k{i % 10}", f"P-{i}").set(float(i + step))

    update(0)
    return registry, update


def run_ours(rounds: int) -> dict[str, Any]:
    registry, update = build_registry()
    encoder = WriteRequestEncoder(LABELS)
    metrics = list(registry.collect())
    stamp = 1_700_000_000_000
    started = time.thread_time()
    requests = encoder.encode(metrics, stamp)
    first = time.thread_time() - started

    # Steady state: new values each round (collected outside the timing), same label sets.
    steady_times = []
    for step in range(1, rounds + 1):
        update(step)
        metrics = list(registry.collect())
        stamp += 15_000
        began = time.thread_time()
        requests = encoder.encode(metrics, stamp)
        steady_times.append(time.thread_time() - began)
    collect = median_seconds(lambda: list(registry.collect()), rounds)

    def whole() -> None:
        encoder.encode(read_registry(registry), stamp + 15_000)

    def whole_collected() -> None:
        encoder.encode(registry.collect(), stamp + 15_000)

    lean_registry, lean_update = build_registry(lean=True)
    lean_encoder = WriteRequestEncoder(LABELS)
    lean_encoder.encode(read_registry(lean_registry), stamp)
    lean_update(1)

    def whole_lean() -> None:
        lean_encoder.encode(read_registry(lean_registry), stamp + 15_000)

    return {
        "whole_collected_s": median_seconds(whole_collected, rounds),
        "whole_lean_s": median_seconds(whole_lean, rounds),
        "samples": sum(r.samples for r in requests),
        "requests": len(requests),
        "bytes": sum(len(r.body) for r in requests),
        "collect_s": collect,
        "first_s": first,
        "steady_s": statistics.median(steady_times),
        "whole_s": median_seconds(whole, rounds),
    }


def run_otel(rounds: int) -> dict[str, Any] | str:
    try:
        done = subprocess.run(
            [*PEER_COMMAND, str(rounds)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not run the OTel peer: {exc}"
    if done.returncode != 0:
        return "OTel peer failed (exporter not installable?):\n" + done.stderr[-1500:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-otel", action="store_true", help="only measure qw-metrics")
    args = parser.parse_args()

    ours = run_ours(args.rounds)
    otel = "skipped (--no-otel)" if args.no_otel else run_otel(args.rounds)
    rate = ours["samples"] / ours["steady_s"]
    peer = otel if isinstance(otel, dict) else None
    encode_peer = peer["translate_s"] + peer["serialize_compress_s"] if peer else None
    rows = [
        ("collect (registry.collect / OTel reader)", ours["collect_s"], peer and peer["collect_s"]),
        ("encode+compress, first push (cold cache)", ours["first_s"], None),
        ("encode+compress, steady state *", ours["steady_s"], encode_peer),
        ("whole path via registry.collect()", ours["whole_collected_s"], None),
        ("whole snapshot -> bytes, with collection", ours["whole_s"], peer and peer["whole_s"]),
        ("  same, lean histograms and counters", ours["whole_lean_s"], peer and peer["whole_s"]),
    ]

    print(f"Remote write: one snapshot of {ours['samples']} samples -> compressed bytes")
    print(f"(median of {args.rounds} rounds; {ours['requests']} requests of <= 2000 samples)\n")
    print(f"{'step':42} {'qw-metrics':>12} {'OTel':>12} {'OTel/ours':>10}")
    print("-" * 79)
    for step, our, their in rows:
        their_text = ms(their) if their else "-"
        ratio = f"{their / our:.1f}x" if their else "-"
        print(f"{step:42} {ms(our):>12} {their_text:>12} {ratio:>10}")
    print("-" * 79)
    print(f"{'steady encode+compress rate':42} {rate / 1e6:8.2f} M samples/s")
    print(f"{'request bytes (snappy)':42} {ours['bytes']:12d} {peer['bytes'] if peer else '-':>12}")
    print("* OTel: PrometheusRemoteWriteMetricsExporter._translate_data + _build_message")
    if peer:
        print(
            "OTel peer: opentelemetry-exporter-prometheus-remote-write "
            f"{peer['exporter_version']}, sdk {peer['sdk_version']}, "
            f"protobuf {peer['protobuf_version']}, {peer['samples']} samples"
        )
        ratio_verdict = "met" if encode_peer / ours["steady_s"] >= TARGET_RATIO else "MISSED"
    else:
        print(f"OTel peer: {otel}")
        ratio_verdict = "not measured"
    rate_verdict = "met" if rate >= TARGET_RATE else "MISSED"
    whole_ok = ours["whole_s"] <= TARGET_WHOLE_S and (
        peer is None or peer["whole_s"] / ours["whole_s"] >= TARGET_WHOLE_RATIO
    )
    print(
        f"targets: >= {TARGET_RATIO:.0f}x the OTel encode path: {ratio_verdict}; "
        f">= {TARGET_RATE / 1e6:.0f} M samples/s steady: {rate_verdict}; "
        f"whole path <= {TARGET_WHOLE_S * 1000:.0f} ms and >= {TARGET_WHOLE_RATIO:.0f}x OTel's: "
        f"{'met' if whole_ok else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
