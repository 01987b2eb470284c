"""OpenTelemetry side of bench_remote_write.py; runs in its own isolated environment.

    uv run --isolated --no-project --with opentelemetry-exporter-prometheus-remote-write \
        --with opentelemetry-sdk python benchmarks/_otel_rw_peer.py ROUNDS

Builds the same metric set as the benchmark (200 labelled histograms with Prometheus' default
buckets, 1,000 labelled counters, 1,000 labelled gauges), then times the reader's collection
and the exporter's translate + serialize + snappy path (what ``export`` does before the HTTP
POST). Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version

from _cpu_time import median_seconds
from opentelemetry.exporter.prometheus_remote_write import PrometheusRemoteWriteMetricsExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

PROMETHEUS_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource({"job": "bench", "instance": "bench-host", "environment": "bench"}),
        views=[
            View(
                instrument_name="bench_latency_seconds",
                aggregation=ExplicitBucketHistogramAggregation(PROMETHEUS_BUCKETS),
            )
        ],
    )
    meter = provider.get_meter("bench")
    histogram = meter.create_histogram("bench_latency_seconds")
    counter = meter.create_counter("bench_events")
    gauge = meter.create_gauge("bench_level")
    for i in range(200):
        attrs = {"stage": f"stage{i % 10}", "product": f"P-{i}"}
        for k in range(5):
            histogram.record(0.001 * (i + k), attrs)
    for i in range(1000):
        counter.add(i + 1, {"kind": f"k{i % 10}", "product": f"P-{i}"})
        gauge.set(float(i), {"kind": f"k{i % 10}", "product": f"P-{i}"})

    exporter = PrometheusRemoteWriteMetricsExporter(endpoint="http://127.0.0.1:9/api/v1/write")
    data = reader.get_metrics_data()
    timeseries = exporter._translate_data(data)
    body = exporter._build_message(timeseries)

    collect = median_seconds(reader.get_metrics_data, rounds)
    translate = median_seconds(lambda: exporter._translate_data(data), rounds)
    serialize = median_seconds(lambda: exporter._build_message(timeseries), rounds)

    def whole() -> None:
        exporter._build_message(exporter._translate_data(reader.get_metrics_data()))

    print(
        json.dumps(
            {
                "exporter_version": version("opentelemetry-exporter-prometheus-remote-write"),
                "sdk_version": version("opentelemetry-sdk"),
                "protobuf_version": version("protobuf"),
                "samples": sum(len(ts.samples) for ts in timeseries),
                "bytes": len(body),
                "collect_s": collect,
                "translate_s": translate,
                "serialize_compress_s": serialize,
                "whole_s": median_seconds(whole, rounds),
            }
        )
    )


if __name__ == "__main__":
    main()
