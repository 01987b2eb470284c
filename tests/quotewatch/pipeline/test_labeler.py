"""The labeler labels every sample whose horizon passed, exactly like a brute-force reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quotewatch.pipeline.labeler import Labeler, Sample


def reference(
    ticks: list[tuple[int, float]], horizon: int, threshold: float, capacity: int, lag: int
) -> tuple[dict[int, int], set[int]]:
    """Labels by sample index and the evicted indices, computed from the whole series at once.

    mid(t + Δ) is the mid of the first tick at or after t + Δ. Sample i waits in the buffer until
    tick j (its first tick at or after the horizon); it is evicted when sample i + capacity
    arrives (and is queued before labelling) while it still waits (j >= i + capacity, or none).
    With `lag` 1 each sample is queued one tick late, as the pipeline does.
    """
    labels: dict[int, int] = {}
    evicted: set[int] = set()
    for i, (t, mid) in enumerate(ticks):
        j = next((k for k in range(i + 1, len(ticks)) if ticks[k][0] >= t + horizon), None)
        if (j is None or j >= i + capacity + lag) and i + capacity + lag < len(ticks):
            evicted.add(i)
        elif j is not None:
            labels[i] = int(abs(ticks[j][1] - mid) / mid > threshold)
    return labels, evicted


def run(ticks: list[tuple[int, float]], labeler: Labeler, lag: int) -> tuple[dict[int, int], int]:
    labels: dict[int, int] = {}
    evictions = 0
    previous = None
    for i, (t, mid) in enumerate(ticks):
        sample = Sample(t, mid, (float(i),), None)
        result = labeler.update(t, mid, previous if lag else sample)
        previous = sample
        evictions += result.evicted
        for item in result.labelled:
            labels[int(item.sample.features[0])] = item.label
    return labels, evictions


ticks_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=400_000),  # gap to the previous tick, µs
        st.floats(min_value=99.0, max_value=101.0),
    ),
    max_size=200,
).map(
    lambda steps: [(sum(gap for gap, _ in steps[: i + 1]), mid) for i, (_, mid) in enumerate(steps)]
)


@settings(max_examples=150, deadline=None)
@given(
    ticks=ticks_strategy,
    horizon=st.integers(min_value=1, max_value=1_500_000),
    threshold=st.sampled_from([0.0001, 0.001, 0.005]),
    capacity=st.integers(min_value=1, max_value=30),
    lag=st.sampled_from([0, 1]),
)
def test_matches_brute_force_reference(
    ticks: list[tuple[int, float]], horizon: int, threshold: float, capacity: int, lag: int
) -> None:
    labeler = Labeler(horizon_us=horizon, threshold=threshold, capacity=capacity)
    labels, evictions = run(ticks, labeler, lag)
    expected_labels, expected_evicted = reference(ticks, horizon, threshold, capacity, lag)
    assert labels == expected_labels
    assert evictions == len(expected_evicted)
    # Nothing is lost: every queued sample is labelled, evicted or still waiting.
    queued = max(0, len(ticks) - lag)
    assert len(labels) + evictions + len(labeler) == queued


def test_labels_every_ready_sample_on_one_update() -> None:
    labeler = Labeler(horizon_us=500_000, threshold=0.0001)
    for k in range(5):
        assert labeler.update(k * 1000, 100.0, Sample(k * 1000, 100.0, (), None)).labelled == ()
    result = labeler.update(504_000, 100.5, None)
    assert [x.sample.time_us for x in result.labelled] == [0, 1000, 2000, 3000, 4000]
    assert [x.label for x in result.labelled] == [1] * 5
    assert len(labeler) == 0


def test_the_mid_at_exactly_the_horizon_is_used_and_small_moves_are_zero() -> None:
    labeler = Labeler(horizon_us=500_000, threshold=0.0001)
    labeler.update(0, 100.0, Sample(0, 100.0, (), None))
    assert labeler.update(499_999, 200.0, None).labelled == ()
    (item,) = labeler.update(500_000, 100.009, None).labelled  # 0.009% < 0.01%
    assert item.label == 0


def test_full_buffer_evicts_oldest_and_reports_it() -> None:
    labeler = Labeler(horizon_us=10_000_000, capacity=3)
    evicted = [labeler.update(t, 100.0, Sample(t, 100.0, (), None)).evicted for t in range(5)]
    assert evicted == [0, 0, 0, 1, 1]  # the third sample fills it
    assert len(labeler) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon_us": 0}, "horizon"),
        ({"threshold": 0.0}, "threshold"),
        ({"capacity": 0}, "capacity"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Labeler(**kwargs)  # type: ignore[arg-type]
