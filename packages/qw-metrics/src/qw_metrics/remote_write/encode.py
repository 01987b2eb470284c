"""Registry snapshot -> snappy-compressed Remote Write 1.0 ``WriteRequest`` bodies.

The protobuf is written by hand because the generated classes cost tens of microseconds per
series. Label sets rarely change between pushes, so each series' encoded labels (and the bytes
in front of its sample) are cached per metric family; a push then only packs one double and
one timestamp per series, in a single ``struct`` call per request.

Wire layout of one series inside ``WriteRequest`` (field 1, repeated ``TimeSeries``)::

    0x0a len(TimeSeries)
      (0x0a len(Label) 0x0a len(name) name 0x12 len(value) value)*   labels, sorted
      0x12 len(Sample) 0x09 <double value> 0x10 <varint timestamp ms>  one sample
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from qw_metrics.errors import InvalidSeriesError
from qw_metrics.remote_write.collect import Block
from qw_metrics.remote_write.compress import compress_block

MAX_SAMPLES_PER_REQUEST = 2000
"""Prometheus's ``max_samples_per_send``: no request carries more samples than this."""

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

# Single-field getters hand back objects that already exist, so a push allocates no per-sample
# tuples; fewer young objects means fewer garbage-collector passes over a big registry.
_NAME = itemgetter(0)
_LABELS = itemgetter(1)
_VALUE = itemgetter(2)
_TIMESTAMP = itemgetter(3)

_Select = Callable[[list[float]], Sequence[float]]
# How Prometheus prints le/quantile: 0.005, 1.0, +Inf (prometheus_client leaves it untyped).
_format_float: Callable[[float], str] = floatToGoString


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """One compressed ``WriteRequest`` body ready to POST, and how many samples it holds."""

    body: bytes
    samples: int


_ONE_BYTE = [bytes((n,)) for n in range(0x80)]

STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus's staleness marker: a NaN with this exact bit pattern ends a series."""

# MetricMetadata.MetricType by Prometheus type name (prompb types.proto).
_METADATA_TYPES = {
    "counter": 1, "gauge": 2, "histogram": 3, "gaugehistogram": 4, "summary": 5, "info": 6,
    "stateset": 7,
}  # fmt: skip

# Encoded Label fields by (name, value): the same pairs (job, le="0.5", ...) recur across series.
_LABEL_CACHE_LIMIT = 100_000


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative int64 values use their two's complement."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_label(name: str, value: str) -> bytes:
    """One ``TimeSeries.labels`` field (a length-delimited ``Label`` message)."""
    n = name.encode()
    v = value.encode()
    label = b"\x0a" + varint(len(n)) + n + b"\x12" + varint(len(v)) + v
    return b"\x0a" + varint(len(label)) + label


def _string_field(tag: int, text: str) -> bytes:
    """A length-delimited string field, left out when empty (proto3's default)."""
    if not text:
        return b""
    data = text.encode("utf-8", "replace")
    return bytes((tag,)) + varint(len(data)) + data


def _sample_suffix(timestamp_ms: int) -> bytes:
    return b"\x10" + varint(timestamp_ms)


def _series_prefix(labels: bytes, suffix_len: int) -> bytes:
    """Everything of one series up to its double: the TimeSeries header, labels, Sample header."""
    sample_len = 9 + suffix_len
    series_len = len(labels) + 1 + len(varint(sample_len)) + sample_len
    return b"\x0a" + varint(series_len) + labels + b"\x12" + varint(sample_len) + b"\x09"


def _selector(indices: list[int], total: int) -> _Select | None:
    """A C-speed picker of the kept samples' values, or None when every sample is kept."""
    if len(indices) == total:
        return None
    if not indices:
        return lambda values: ()
    if len(indices) == 1:
        only = indices[0]
        return lambda values: (values[only],)
    return itemgetter(*indices)


class _Family:
    """Cached encoding of one metric family, valid while its samples' names and labels match."""

    __slots__ = ("indices", "label_sets", "labels", "names", "prefixes", "select", "suffix_len")

    def __init__(
        self,
        names: list[Any],  # sample names; for a Block, its children's label values
        label_sets: list[dict[str, str]],
        indices: list[int],
        labels: list[bytes],
    ) -> None:
        self.names = names
        self.label_sets = label_sets
        self.indices = indices
        self.labels = labels
        self.select = _selector(indices, len(names))
        self.suffix_len = -1
        self.prefixes: list[bytes] = []

    def prefixes_for(self, suffix_len: int) -> list[bytes]:
        if suffix_len != self.suffix_len:
            self.prefixes = [_series_prefix(labels, suffix_len) for labels in self.labels]
            self.suffix_len = suffix_len
        return self.prefixes


def _check_label_name(name: str, metric: str) -> None:
    if not isinstance(name, str) or not _LABEL_NAME.match(name) or name.startswith("__"):
        raise InvalidSeriesError(
            f"label name {name!r} on metric {metric!r} is not a valid Prometheus label name "
            "(it must match [a-zA-Z_][a-zA-Z0-9_]* and must not start with '__'); rename the label"
        )


def _go_float(value: str, label: str, metric: str) -> str:
    try:
        return _format_float(float(value))
    except ValueError:
        raise InvalidSeriesError(
            f"label {label}={value!r} on metric {metric!r} is not a number; "
            f"{label} must hold a float such as '0.5' or '+Inf'"
        ) from None


def check_external_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Validate labels added to every series; empty values are dropped as Prometheus does."""
    out = {}
    for name, value in labels.items():
        _check_label_name(name, "<external labels>")
        if not isinstance(value, str):
            raise InvalidSeriesError(
                f"external label {name!r} has a {type(value).__name__} value; pass a str"
            )
        if value:
            out[name] = value
    return out


class WriteRequestEncoder:
    """Encodes collected metric families into compressed requests of at most 2,000 samples.

    Not thread-safe: give each pushing thread its own encoder.
    """

    def __init__(
        self,
        external_labels: Mapping[str, str] | None = None,
        *,
        max_samples_per_request: int = MAX_SAMPLES_PER_REQUEST,
    ) -> None:
        if max_samples_per_request < 1:
            raise InvalidSeriesError(
                f"max_samples_per_request={max_samples_per_request!r}; it must be at least 1"
            )
        self._external = check_external_labels(external_labels or {})
        self._max = max_samples_per_request
        self._families: dict[object, _Family] = {}
        self._structs: dict[tuple[int, tuple[int, ...]], struct.Struct] = {}
        self._label_bytes: dict[tuple[str, str], bytes] = {}
        self._checked_names: set[str] = set()

    def encode(self, metrics: Iterable[Metric | Block], timestamp_ms: int) -> list[EncodedRequest]:
        """Encode and compress every sample of ``metrics`` (collected families, or Blocks
        from ``read_registry``); samples without a timestamp get ``timestamp_ms``. Raises
        InvalidSeriesError for names Prometheus would reject."""
        return [
            EncodedRequest(compress_block(body), count)
            for body, count in self.encode_uncompressed(metrics, timestamp_ms)
        ]

    def encode_uncompressed(
        self, metrics: Iterable[Metric | Block], timestamp_ms: int
    ) -> list[tuple[bytes, int]]:
        """Like :meth:`encode` but returns raw ``WriteRequest`` bytes and sample counts."""
        suffix = _sample_suffix(timestamp_ms)
        suffix_len = len(suffix)
        prefixes: list[bytes] = []
        values: list[float] = []
        # position -> sample suffix, for the rare samples that carry their own timestamp
        overrides: dict[int, bytes] = {}
        seen: dict[object, _Family] = {}
        for metric in metrics:
            if type(metric) is Block:
                if not metric.values:
                    continue
                family = self._families.get(metric.family)
                if family is None or family.names != metric.keys:
                    encoded = [self._series_labels(n, s, metric.kind) for n, s in metric.series()]
                    # One value per series, all kept: indices cover them in order.
                    family = _Family(metric.keys, [], list(range(len(encoded))), encoded)
                    family.select = None
                seen[metric.family] = family
                prefixes.extend(family.prefixes_for(suffix_len))
                values.extend(metric.values)
                continue
            assert isinstance(metric, Metric)
            samples = metric.samples
            if not samples:
                continue
            key = (metric.name, metric.type)
            names = list(map(_NAME, samples))
            label_sets = list(map(_LABELS, samples))
            family = self._families.get(key)
            if family is None or family.names != names or family.label_sets != label_sets:
                family = self._build(metric, names, label_sets)
            seen[key] = family
            all_values = list(map(_VALUE, samples))
            timestamps = list(map(_TIMESTAMP, samples))
            if timestamps.count(None) != len(timestamps):
                for index, labels in zip(family.indices, family.labels, strict=True):
                    own = timestamps[index]
                    if own is not None:
                        own_suffix = _sample_suffix(round(float(own) * 1000))
                        overrides[len(prefixes)] = own_suffix
                        prefixes.append(_series_prefix(labels, len(own_suffix)))
                    else:
                        prefixes.append(_series_prefix(labels, suffix_len))
                    values.append(all_values[index])
                continue
            prefixes.extend(family.prefixes_for(suffix_len))
            values.extend(all_values if family.select is None else family.select(all_values))
        self._families = seen
        return self._pack(prefixes, values, suffix, overrides)

    def encode_stale(self, timestamp_ms: int) -> list[EncodedRequest]:
        """End every series of the last :meth:`encode` with a staleness marker (Prometheus's
        StaleNaN) at ``timestamp_ms``, so queries stop showing them at once."""
        suffix = _sample_suffix(timestamp_ms)
        labels = [series for family in self._families.values() for series in family.labels]
        prefixes = [_series_prefix(series, len(suffix)) for series in labels]
        bodies = self._pack(prefixes, [STALE_NAN] * len(prefixes), suffix, {})
        return [EncodedRequest(compress_block(body), count) for body, count in bodies]

    def encode_metadata(self, metrics: Iterable[Metric | Block]) -> list[EncodedRequest]:
        """One request of ``MetricMetadata`` (type, help, unit) for every family with samples,
        as Prometheus sends it; it carries no samples."""
        out = []
        for metric in metrics:
            if type(metric) is Block:
                if not metric.values:
                    continue
                name, kind, help_text, unit = metric.name, metric.kind, metric.help, metric.unit
            else:
                assert isinstance(metric, Metric)
                if not metric.samples:
                    continue
                name, kind, unit = metric.name, metric.type, metric.unit
                help_text = metric.documentation
            # Named as the exposition's TYPE line names it, which is what a scrape records.
            family = name + "_total" if kind == "counter" and not name.endswith("_total") else name
            message = (
                b"\x08" + varint(_METADATA_TYPES.get(kind, 0))
                + _string_field(0x12, family) + _string_field(0x22, help_text)
                + _string_field(0x2A, unit)
            )  # fmt: skip
            out.append(b"\x1a" + varint(len(message)) + message)
        return [EncodedRequest(compress_block(b"".join(out)), 0)] if out else []

    def _pack(
        self, prefixes: list[bytes], values: list[float], suffix: bytes, overrides: dict[int, bytes]
    ) -> list[tuple[bytes, int]]:
        """WriteRequest bodies of at most ``max_samples_per_request`` series each."""
        suffix_len = len(suffix)
        out = []
        structs: dict[tuple[int, tuple[int, ...]], struct.Struct] = {}
        for start in range(0, len(values), self._max):
            stop = min(start + self._max, len(values))
            count = stop - start
            args: list[object] = [suffix] * (3 * count)
            args[0::3] = prefixes[start:stop]
            args[1::3] = values[start:stop]
            own = [pos for pos in overrides if start <= pos < stop]
            if own:
                for pos in own:
                    args[3 * (pos - start) + 2] = overrides[pos]
                layout = _layout(args)
            else:
                shape = (suffix_len, tuple(map(len, prefixes[start:stop])))
                layout = structs.get(shape) or self._structs.get(shape) or _uniform_layout(shape)
                structs[shape] = layout
            out.append((layout.pack(*args), count))
        self._structs = structs
        return out

    def _build(self, metric: Metric, names: list[str], label_sets: list[dict[str, str]]) -> _Family:
        name = metric.name
        left_out = {name + "_created", name + "_gcreated"}
        indices = []
        labels = []
        for index, sample in enumerate(metric.samples):
            if sample.name in left_out or sample.native_histogram is not None:
                continue
            sample_name = sample.name
            if metric.type == "counter" and sample_name == name:
                sample_name = name + "_total"
            labels.append(self._series_labels(sample_name, sample.labels, metric.type))
            indices.append(index)
        return _Family(names, label_sets, indices, labels)

    def _series_labels(self, name: str, labels: Mapping[str, str], kind: str) -> bytes:
        if not isinstance(name, str) or not _METRIC_NAME.match(name):
            raise InvalidSeriesError(
                f"metric name {name!r} is not a valid Prometheus metric name "
                "(it must match [a-zA-Z_:][a-zA-Z0-9_:]*); rename the metric"
            )
        merged = dict(self._external)
        checked = self._checked_names
        for label, value in labels.items():
            if label not in checked:
                _check_label_name(label, name)
                checked.add(label)
            text = value if isinstance(value, str) else str(value)
            # Empty means unset in Prometheus: the external label, if any, applies.
            if text:
                merged[label] = text
        if kind in ("histogram", "gaugehistogram") and "le" in merged:
            merged["le"] = _go_float(merged["le"], "le", name)
        if kind == "summary" and "quantile" in merged:
            merged["quantile"] = _go_float(merged["quantile"], "quantile", name)
        merged["__name__"] = name
        cache = self._label_bytes
        if len(cache) > _LABEL_CACHE_LIMIT:
            cache.clear()
        out = []
        # Names are ASCII (checked above), so str order is Go's byte order.
        for pair in sorted(merged.items()):
            encoded = cache.get(pair)
            if encoded is None:
                try:
                    encoded = cache[pair] = encode_label(*pair)
                except UnicodeEncodeError:
                    raise InvalidSeriesError(
                        f"label {pair[0]}={pair[1]!r} on metric {name!r} is not valid UTF-8 "
                        "(it holds a lone surrogate); fix the label value"
                    ) from None
            out.append(encoded)
        return b"".join(out)


def _uniform_layout(key: tuple[int, tuple[int, ...]]) -> struct.Struct:
    suffix_len, prefix_lens = key
    return struct.Struct("<" + "".join(f"{n}sd{suffix_len}s" for n in prefix_lens))


def _layout(args: list[object]) -> struct.Struct:
    parts = []
    for pos in range(0, len(args), 3):
        prefix, suffix = args[pos], args[pos + 2]
        assert isinstance(prefix, bytes)
        assert isinstance(suffix, bytes)
        parts.append(f"{len(prefix)}sd{len(suffix)}s")
    return struct.Struct("<" + "".join(parts))
