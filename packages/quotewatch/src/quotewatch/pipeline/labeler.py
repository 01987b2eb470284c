"""The labeler: turns feature samples into training examples once their horizon has passed.

A sample taken at exchange time t with mid m(t) gets label 1 when
|m(t + Δ) - m(t)| / m(t) > threshold, else 0. **m(t + Δ) is the first mid observed at or after
t + Δ**: the mid of the first update whose exchange time is >= t + Δ. Labelling happens when
that update arrives, so every sample whose horizon has passed is labelled on each update
(possibly many at once).

Samples wait in a FIFO buffer of `capacity` samples. Samples are labelled in arrival order: a
sample is ready when the current time reaches its horizon and every older sample is labelled,
which is the same thing while exchange time does not run backwards. When a sample arrives at a
full buffer the oldest unlabelled sample is evicted; `update` returns the evicted samples, and
the pipeline counts them in `labeler_evictions_total` (see `Pipeline.report_counts`).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from qw_metrics import timed, track_buffer

from quotewatch.metrics import LABELER_BUFFER

LABELER_CAPACITY = 1000


class Sample(NamedTuple):
    """One feature vector waiting for its label."""

    time_us: int
    mid: float
    features: tuple[float, ...]
    probability: float | None  # the model's prediction when the sample was taken
    received_us: int = 0  # when the message the sample came from was received


class Labelled(NamedTuple):
    """A sample with its label (0 or 1)."""

    sample: Sample
    label: int


class LabelResult(NamedTuple):
    """What one `Labeler.update` did."""

    labelled: tuple[Labelled, ...]
    dropped: tuple[Sample, ...] = ()  # evicted unlabelled

    @property
    def evicted(self) -> int:
        """How many samples were evicted before being labelled."""
        return len(self.dropped)


_NOTHING = LabelResult(())


@track_buffer(LABELER_BUFFER, capacity="capacity", attr="_buffer")
class Labeler:
    """Labels samples by whether the mid moved more than `threshold` within `horizon_us`."""

    __slots__ = ("__weakref__", "_buffer", "capacity", "horizon_us", "threshold")

    def __init__(
        self,
        horizon_us: int = 500_000,
        threshold: float = 0.0001,
        capacity: int = LABELER_CAPACITY,
    ) -> None:
        if horizon_us <= 0:
            raise ValueError(f"label horizon must be > 0 µs, got {horizon_us}")
        if not threshold > 0:
            raise ValueError(f"label threshold must be > 0 (a fraction, 0.0001 = 0.01%), "
                             f"got {threshold}")  # fmt: skip
        if capacity < 1:
            raise ValueError(f"labeler capacity must be >= 1, got {capacity}")
        self.horizon_us = horizon_us
        self.threshold = threshold
        self.capacity = capacity
        self._buffer: deque[Sample] = deque()

    def __len__(self) -> int:
        return len(self._buffer)

    @timed(stage="labeler")
    def update(self, time_us: int, mid: float, sample: Sample | None) -> LabelResult:
        """Queue `sample` (if any), then label every sample whose horizon `time_us` reached.

        `mid` is the mid at `time_us`. `sample` must not be newer than `time_us`; the pipeline
        passes the previous update's sample, so its prediction can use the model as trained on
        this update's labels. When the buffer is full the oldest waiting sample is evicted.
        """
        buffer = self._buffer
        dropped: list[Sample] | None = None
        if sample is not None:
            while len(buffer) >= self.capacity:
                if dropped is None:
                    dropped = []
                dropped.append(buffer.popleft())
            buffer.append(sample)
        ready = time_us - self.horizon_us
        labelled: list[Labelled] | None = None
        while buffer and buffer[0].time_us <= ready:
            old = buffer.popleft()
            moved = old.mid > 0 and abs(mid - old.mid) / old.mid > self.threshold
            if labelled is None:
                labelled = []
            labelled.append(Labelled(old, 1 if moved else 0))
        if labelled is None and dropped is None:
            return _NOTHING
        return LabelResult(tuple(labelled or ()), tuple(dropped or ()))

    def drain(self) -> list[Sample]:
        """Remove and return every waiting sample, oldest first (at shutdown)."""
        waiting = list(self._buffer)
        self._buffer.clear()
        return waiting
