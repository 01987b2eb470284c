"""The hand-written encoder, checked by decoding with the generated protobuf module."""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Iterator

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from qw_metrics.remote_write import InvalidSeriesError, WriteRequestEncoder
from qw_metrics.remote_write.collect import read_registry
from qw_metrics.remote_write.compress import compress_block, decompress_block
from support.remote_pb2 import MetricMetadata, WriteRequest
from support.remote_write import TS, Series, decode


class Collector:
    def __init__(self, *metrics: Metric) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def registry_of(*metrics: Metric) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(Collector(*metrics))
    return registry


def test_snappy_is_block_format_not_framed() -> None:
    data = b"remote write " * 100
    compressed = compress_block(data)
    assert not compressed.startswith(b"\xff\x06\x00\x00sNaPpY")
    assert bytes(cramjam.snappy.decompress_raw(compressed)) == data
    assert compressed[0] == len(data) & 0x7F | 0x80  # block format opens with the length varint


def test_every_metric_type_becomes_prometheus_series() -> None:
    registry = CollectorRegistry()
    Counter("c", "c", ["k"], registry=registry).labels("x").inc(2)
    Gauge("g", "g", registry=registry).set(-1.5)
    Histogram("h_seconds", "h", buckets=(0.005, 1, 2.5), registry=registry).observe(0.7)
    Summary("s", "s", registry=registry).observe(3)
    Info("build", "b", registry=registry).info({"version": "1"})
    Enum("state", "e", states=["on", "off"], registry=registry).state("off")
    decoded = decode(WriteRequestEncoder().encode(registry.collect(), TS))
    got = {
        (dict(labels)["__name__"], dict(labels).get("le", "")): v
        for labels, v, _ in decoded
        if dict(labels)["__name__"] != "state"
    }
    assert got == {
        ("c_total", ""): 2.0,
        ("g", ""): -1.5,
        ("h_seconds_bucket", "0.005"): 0.0,
        ("h_seconds_bucket", "1.0"): 1.0,
        ("h_seconds_bucket", "2.5"): 1.0,
        ("h_seconds_bucket", "+Inf"): 1.0,
        ("h_seconds_sum", ""): 0.7,
        ("h_seconds_count", ""): 1.0,
        ("s_sum", ""): 3.0,
        ("s_count", ""): 1.0,
        ("build_info", ""): 1.0,
    }
    states = [
        (dict(labels)["state"], v) for labels, v, _ in decoded if ("__name__", "state") in labels
    ]
    assert states == [("on", 0.0), ("off", 1.0)]


def test_created_series_are_left_out() -> None:
    gauge_histogram = GaugeHistogramMetricFamily(
        "gh", "gh", buckets=[("1.0", 1), ("+Inf", 2)], gsum_value=3
    )
    gauge_histogram.add_sample("gh_gcreated", {}, 123.0)
    registry = registry_of(gauge_histogram)
    Counter("c", "c", registry=registry).inc()
    decoded = decode(WriteRequestEncoder().encode(registry.collect(), TS))
    names = {dict(labels)["__name__"] for labels, _, _ in decoded}
    assert names == {"gh_bucket", "gh_gcount", "gh_gsum", "c_total"}


def test_custom_collector_values_are_normalised() -> None:
    histogram = HistogramMetricFamily("lat", "l", labels=["stage"])
    histogram.add_metric(["a"], buckets=[("1", 2), ("2.50", 3), ("+Inf", 4)], sum_value=5)
    counter = CounterMetricFamily("hits", "h", labels=["k"])
    counter.add_metric(["x"], 9)
    raw_counter = Metric("raw", "r", "counter")
    raw_counter.add_sample("raw", {}, 1)
    decoded = decode(
        WriteRequestEncoder().encode(registry_of(histogram, counter, raw_counter).collect(), TS)
    )
    les = [dict(labels).get("le") for labels, _, _ in decoded if "le" in dict(labels)]
    assert les == ["1.0", "2.5", "+Inf"]
    names = [dict(labels)["__name__"] for labels, _, _ in decoded]
    assert "hits_total" in names
    assert "raw_total" in names


def test_labels_sorted_by_bytes_external_merged_and_empty_dropped() -> None:
    registry = CollectorRegistry()
    Gauge("g", "g", ["Zone", "a", "empty", "job"], registry=registry).labels(
        "z", "1", "", "from-series"
    ).set(1)
    encoder = WriteRequestEncoder(
        {"job": "from-external", "instance": "h", "environment": "", "region": "eu"}
    )
    [(labels, value, ts)] = decode(encoder.encode(registry.collect(), TS))
    assert labels == (
        ("Zone", "z"),
        ("__name__", "g"),
        ("a", "1"),
        ("instance", "h"),
        ("job", "from-series"),  # the series' own label wins, as in Prometheus
        ("region", "eu"),
    )
    assert (value, ts) == (1.0, TS)


@pytest.mark.parametrize(
    ("name", "labels", "message"),
    [
        ("bad-name", {}, "metric name 'bad-name'"),
        ("ok", {"bad-label": "v"}, "label name 'bad-label'"),
        ("ok", {"__reserved": "v"}, "label name '__reserved'"),
        ("ok", {"k": "bad\ud800"}, "not valid UTF-8"),
    ],
)
def test_invalid_names_raise_a_clear_error(name: str, labels: dict[str, str], message: str) -> None:
    metric = Metric(name, "doc", "gauge")
    metric.add_sample(name, labels, 1.0)
    with pytest.raises(InvalidSeriesError, match=message):
        WriteRequestEncoder().encode(registry_of(metric).collect(), TS)


def test_invalid_external_label_raises() -> None:
    with pytest.raises(InvalidSeriesError, match="'__name__'"):
        WriteRequestEncoder({"__name__": "x"})
    with pytest.raises(InvalidSeriesError, match="'my-env'"):
        WriteRequestEncoder({"my-env": "x"})


def test_requests_hold_at_most_2000_samples() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("g", "g", ["n"], registry=registry)
    for n in range(5000):
        gauge.labels(str(n)).set(n)
    requests = WriteRequestEncoder().encode(registry.collect(), TS)
    assert [r.samples for r in requests] == [2000, 2000, 1000]
    assert [v for _, v, _ in decode(requests)] == [float(n) for n in range(5000)]


def test_cache_follows_new_children_values_and_timestamps() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("g", "g", ["n"], registry=registry)
    gauge.labels("a").set(1)
    encoder = WriteRequestEncoder({"job": "j"})
    assert [v for _, v, _ in decode(encoder.encode(registry.collect(), TS))] == [1.0]
    gauge.labels("b").set(2)
    gauge.labels("a").set(3)
    later = decode(encoder.encode(registry.collect(), TS + 15_000))
    assert [(dict(labels)["n"], v, ts) for labels, v, ts in later] == [
        ("a", 3.0, TS + 15_000),
        ("b", 2.0, TS + 15_000),
    ]
    # A timestamp whose varint is shorter changes every cached prefix length.
    assert [v for _, v, _ in decode(encoder.encode(registry.collect(), 5))] == [3.0, 2.0]


def test_explicit_sample_timestamps_are_kept() -> None:
    metric = Metric("stamped", "s", "gauge")
    metric.add_sample("stamped", {"k": "a"}, 1.0, timestamp=1_600_000_000.25)
    metric.add_sample("stamped", {"k": "b"}, 2.0)
    decoded = decode(WriteRequestEncoder().encode(registry_of(metric).collect(), TS))
    assert [(v, ts) for _, v, ts in decoded] == [(1.0, 1_600_000_000_250), (2.0, TS)]


# ---- property: decode(encode(registry)) == the registry's samples --------------------------

LABEL_NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: not n.startswith("__") and n not in ("le", "quantile")
)
LABEL_VALUES = st.text(max_size=6)
VALUES = st.floats(allow_nan=True, allow_infinity=True, width=64)
KINDS = ("gauge", "counter", "untyped", "summary", "histogram")


@st.composite
def families(draw: st.DrawFn) -> list[Metric]:
    out = []
    for index in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(KINDS))
        name = f"m{index}_{draw(st.from_regex(r'[a-z_:]{0,6}', fullmatch=True))}"
        metric = Metric(name, "doc", kind)
        label_names = draw(st.lists(LABEL_NAMES, max_size=3, unique=True))
        children = draw(
            st.lists(st.tuples(*[LABEL_VALUES for _ in label_names]), max_size=4, unique=True)
        )
        for child in children:
            labels = dict(zip(label_names, child, strict=True))
            if kind == "counter":
                metric.add_sample(name + "_total", labels, draw(VALUES))
                metric.add_sample(name + "_created", labels, 1.0)
            elif kind == "histogram":
                for le in ("0.5", "1.0", "+Inf"):
                    metric.add_sample(name + "_bucket", {**labels, "le": le}, draw(VALUES))
                metric.add_sample(name + "_count", labels, draw(VALUES))
                metric.add_sample(name + "_sum", labels, draw(VALUES))
            elif kind == "summary":
                metric.add_sample(name, {**labels, "quantile": "0.5"}, draw(VALUES))
                metric.add_sample(name + "_sum", labels, draw(VALUES))
            else:
                metric.add_sample(name, labels, draw(VALUES))
        out.append(metric)
    return out


def expected(metrics: list[Metric], external: dict[str, str], ts: int) -> list[Series]:
    """An independent, slow statement of the mapping."""
    out = []
    for metric in metrics:
        for sample in metric.samples:
            if sample.name.endswith("_created"):
                continue
            labels = {k: v for k, v in external.items() if v}
            # An empty value means "no such label", so the external label applies.
            labels.update({k: v for k, v in sample.labels.items() if v})
            labels["__name__"] = sample.name
            pairs = sorted(((k, v) for k, v in labels.items() if v), key=lambda kv: kv[0].encode())
            out.append((tuple(pairs), sample.value, ts))
    return out


def same(got: list[Series], want: list[Series]) -> bool:
    def key(series: Series) -> tuple[object, ...]:
        labels, value, ts = series
        return (labels, struct.pack("<d", value) if math.isnan(value) else value, ts)

    return [key(s) for s in got] == [key(s) for s in want]


@settings(max_examples=150, deadline=None)
@given(
    first=families(),
    observations=st.lists(
        st.tuples(LABEL_VALUES, st.floats(-1e6, 1e6, allow_nan=False)), max_size=6
    ),
    values_again=st.lists(VALUES, min_size=1, max_size=10),
    external=st.dictionaries(LABEL_NAMES, LABEL_VALUES, max_size=3),
    batch=st.integers(1, 7),
    ts=st.integers(-(2**40), 2**45),
)
def test_decoding_gives_back_exactly_the_registry_samples(
    *,
    first: list[Metric],
    observations: list[tuple[str, float]],
    values_again: list[float],
    external: dict[str, str],
    batch: int,
    ts: int,
) -> None:
    # Custom families plus prometheus_client's own metric types.
    registry = registry_of(*first)
    histogram = Histogram("real_seconds", "h", ["k"], buckets=(0.5, 10), registry=registry)
    counter = Counter("real_events", "c", ["k"], registry=registry)
    gauge = Gauge("real_level", "g", ["k"], registry=registry)
    summary = Summary("real_size", "s", ["k"], registry=registry)
    for key, value in observations:
        histogram.labels(key).observe(value)
        counter.labels(key).inc(abs(value))
        gauge.labels(key).set(value)
        summary.labels(key).observe(value)

    encoder = WriteRequestEncoder(external, max_samples_per_request=batch)
    collected = list(registry.collect())
    requests = encoder.encode(collected, ts)
    assert all(r.samples <= batch for r in requests)
    assert same(decode(requests), expected(collected, external, ts))
    for labels, _, _ in decode(requests):
        names = [name for name, _ in labels]
        assert names == sorted(names, key=str.encode)
        assert len(set(names)) == len(names)
        assert all(value for _, value in labels)

    # Same label sets, new values and time: the cached path must give the new samples.
    changed = itertools.cycle(values_again)
    for metric in first:
        metric.samples = [s._replace(value=next(changed)) for s in metric.samples]
    for key, value in observations:
        histogram.labels(key).observe(value + 1)
        counter.labels(key).inc()
    collected = list(registry.collect())
    again = encoder.encode(collected, ts + 1)
    assert same(decode(again), expected(collected, external, ts + 1))


def test_metadata_names_each_family_as_its_exposition_does() -> None:
    registry = CollectorRegistry()
    Counter("frames", "Frames received.", ["type"], registry=registry).labels("match").inc()
    Histogram("flush_seconds", "Flush time.", unit="seconds", registry=registry).observe(0.1)
    Gauge("depth", "Book depth.", registry=registry).set(3)
    Counter("never", "No children yet.", ["x"], registry=registry)  # no samples: no metadata
    encoder = WriteRequestEncoder()
    (request,) = encoder.encode_metadata(read_registry(registry))
    assert request.samples == 0
    message = WriteRequest.FromString(decompress_block(request.body))
    assert list(message.timeseries) == []
    got = {(m.metric_family_name, m.type, m.help, m.unit) for m in message.metadata}
    kinds = MetricMetadata.MetricType
    assert got == {
        ("frames_total", kinds.COUNTER, "Frames received.", ""),
        ("flush_seconds", kinds.HISTOGRAM, "Flush time.", "seconds"),
        ("depth", kinds.GAUGE, "Book depth.", ""),
    }
    # The same from collected families as from the direct read.
    collected = encoder.encode_metadata(registry.collect())
    assert decompress_block(collected[0].body) == decompress_block(request.body)


def test_staleness_markers_end_exactly_the_series_of_the_last_encode() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("level", "l", ["side"], registry=registry)
    gauge.labels("bid").set(1)
    gauge.labels("ask").set(2)
    encoder = WriteRequestEncoder({"job": "t"})
    encoder.encode(read_registry(registry), TS)
    stale = decode(encoder.encode_stale(TS + 1))
    assert sorted(labels for labels, _, _ in stale) == [
        (("__name__", "level"), ("job", "t"), ("side", "ask")),
        (("__name__", "level"), ("job", "t"), ("side", "bid")),
    ]
    for _, value, stamp in stale:
        assert stamp == TS + 1
        assert struct.pack("<d", value) == struct.pack("<Q", 0x7FF0000000000002)
