"""The dashboard's own metric history: registry scrapes in a ring buffer, and PromQL-like maths.

The health page must work without Prometheus or Grafana, so it keeps a few minutes of scrapes
of the process's own registry and computes `increase`, `rate` and `histogram_quantile` the way
Prometheus does (counter resets handled, linear interpolation inside a bucket).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

LabelSet = tuple[tuple[str, str], ...]


class MetricSource(Protocol):
    """Anything with prometheus_client's `collect()`: a CollectorRegistry or a collector."""

    def collect(self) -> Iterable[Any]:
        """Yield metric families whose `.samples` have `.name`, `.labels` and `.value`."""
        ...


@dataclass(frozen=True, slots=True)
class Scrape:
    """Every sample of a registry at one moment (`time`, seconds since the epoch).

    `samples` maps a sample name (e.g. `x_total`, `x_bucket`) to its label sets and values, so
    looking a metric up costs only its own series.
    """

    time: float
    samples: Mapping[str, Mapping[LabelSet, float]]

    def select(self, name: str, match: Mapping[str, str] | None = None) -> dict[LabelSet, float]:
        """Samples called `name` whose labels include every `match` pair, keyed by label set."""
        found = self.samples.get(name, {})
        if not match:
            return dict(found)
        return {labels: v for labels, v in found.items() if _matches(labels, match)}

    def total(self, name: str, match: Mapping[str, str] | None = None) -> float | None:
        """Sum of the matching samples, or None when there are none."""
        found = self.select(name, match)
        return sum(found.values()) if found else None

    def names(self) -> Iterable[str]:
        """The sample names present."""
        return self.samples.keys()


def _matches(labels: LabelSet, match: Mapping[str, str]) -> bool:
    present = dict(labels)
    return all(present.get(k) == v for k, v in match.items())


def _label(labels: LabelSet, name: str) -> str:
    for key, value in labels:
        if key == name:
            return value
    return ""


def scrape(source: MetricSource, now: float) -> Scrape:
    """Read every sample of `source` (skipping `_created` timestamps) into a Scrape."""
    samples: dict[str, dict[LabelSet, float]] = {}
    for family in source.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            series = samples.setdefault(sample.name, {})
            series[tuple(sorted(sample.labels.items()))] = float(sample.value)
    return Scrape(now, samples)


def counter_increase(before: float | None, after: float) -> float:
    """How much a counter grew from `before` to `after`; a drop means it restarted from 0."""
    if before is None or after < before:
        # A series absent before was created (at 0) inside the window; a drop is a reset.
        return after
    return after - before


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's `histogram_quantile` over cumulative `(upper_bound, count)` buckets.

    Returns None where Prometheus returns NaN: no observations, no +Inf bucket, or fewer than
    two buckets. A quantile landing in the +Inf bucket is the highest finite upper bound.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be between 0 and 1, got {q!r}")
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    # Counts read from separate scrapes can be slightly non-monotonic; Prometheus evens them out.
    bounds = [bound for bound, _ in ordered]
    counts: list[float] = []
    for _, count in ordered:
        counts.append(max(count, counts[-1]) if counts else count)
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    # The first bucket reaching the rank; for q = 0, the first bucket with any observation.
    index = next(i for i, count in enumerate(counts) if count >= rank and count > 0)
    if index == len(counts) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start = bounds[index - 1] if index > 0 else 0.0
    below = counts[index - 1] if index > 0 else 0.0
    in_bucket = counts[index] - below
    return start + (bounds[index] - start) * ((rank - below) / in_bucket)


@dataclass(frozen=True, slots=True)
class Window:
    """Two scrapes; counter increases, rates and histogram quantiles between them."""

    first: Scrape
    last: Scrape

    @property
    def seconds(self) -> float:
        """Length of the window."""
        return self.last.time - self.first.time

    def increase(
        self, name: str, by: str | None = None, match: Mapping[str, str] | None = None
    ) -> dict[str, float]:
        """Counter increase of samples called `name`, summed per value of label `by`."""
        before = self.first.select(name, match)
        grouped: dict[str, float] = {}
        for labels, value in self.last.select(name, match).items():
            key = _label(labels, by) if by else ""
            grouped[key] = grouped.get(key, 0.0) + counter_increase(before.get(labels), value)
        return grouped

    def rate(
        self, name: str, by: str | None = None, match: Mapping[str, str] | None = None
    ) -> dict[str, float]:
        """Per-second counter increase of `name`, per value of label `by`."""
        seconds = self.seconds
        if seconds <= 0:
            return {}
        return {k: v / seconds for k, v in self.increase(name, by, match).items()}

    def buckets(
        self, histogram: str, by: str | None = None, match: Mapping[str, str] | None = None
    ) -> dict[str, list[tuple[float, float]]]:
        """Bucket increases of `histogram` (its base name), summed per value of label `by`."""
        per_group: dict[str, dict[float, float]] = {}
        before = self.first.select(f"{histogram}_bucket", match)
        for labels, value in self.last.select(f"{histogram}_bucket", match).items():
            group = _label(labels, by) if by else ""
            bound = float(_label(labels, "le"))
            bucket = per_group.setdefault(group, {})
            bucket[bound] = bucket.get(bound, 0.0) + counter_increase(before.get(labels), value)
        return {group: sorted(b.items()) for group, b in per_group.items()}

    def quantile(
        self,
        q: float,
        histogram: str,
        by: str | None = None,
        match: Mapping[str, str] | None = None,
    ) -> dict[str, float | None]:
        """`histogram_quantile(q, increase(histogram_bucket))` per value of label `by`."""
        return {
            group: histogram_quantile(q, b)
            for group, b in self.buckets(histogram, by, match).items()
        }

    def mean(
        self, histogram: str, by: str | None = None, match: Mapping[str, str] | None = None
    ) -> dict[str, float]:
        """Mean observation in the window (increase of `_sum` over increase of `_count`)."""
        sums = self.increase(f"{histogram}_sum", by, match)
        counts = self.increase(f"{histogram}_count", by, match)
        return {k: sums.get(k, 0.0) / c for k, c in counts.items() if c > 0}


class MetricHistory:
    """The last `capacity` scrapes, oldest first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be at least 2 scrapes, got {capacity!r}")
        self._scrapes: deque[Scrape] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._scrapes)

    def append(self, item: Scrape) -> None:
        """Add the newest scrape, dropping the oldest when full."""
        self._scrapes.append(item)

    def latest(self) -> Scrape | None:
        """The newest scrape, if any."""
        return self._scrapes[-1] if self._scrapes else None

    def scrapes(self) -> tuple[Scrape, ...]:
        """A copy of the held scrapes, oldest first (safe against concurrent appends)."""
        return tuple(self._scrapes)

    def window(self, seconds: float) -> Window | None:
        """From the oldest scrape within `seconds` of the newest, to the newest."""
        held = self.scrapes()
        return next(self.windows(seconds, held[-1:]), None) if held else None

    def windows(self, seconds: float, ends: Sequence[Scrape] | None = None) -> Iterator[Window]:
        """A `seconds`-long window ending at each scrape (or each of `ends`) that has a past."""
        held = self.scrapes()
        targets = held if ends is None else ends
        start = 0
        for end in targets:
            while start < len(held) and held[start].time < end.time - seconds:
                start += 1
            if start < len(held) and held[start].time < end.time:
                yield Window(held[start], end)
