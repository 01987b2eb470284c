"""SequenceTracker with a plausibility bound: one corrupt id far ahead cannot blind it
(issue 18: with ids 100, 101, 2**63, 102, 104, 105 the loss of 103 went uncounted)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st
from qw_metrics import Gap, SequenceKind, SequenceTracker

BOUND = 1_000


def test_the_issue_example_reports_the_loss_of_103() -> None:
    rejected: list[int] = []
    tracker: SequenceTracker[str] = SequenceTracker(
        max_jump=BOUND, on_reject=lambda key, seq: rejected.append(seq)
    )
    kinds = [tracker.observe("k", i).kind for i in (100, 101, 2**63, 102, 104, 105)]
    assert kinds[2] is SequenceKind.SUSPECT
    stats = tracker.stats("k")
    assert (stats.gaps, stats.missed, stats.rejected) == (1, 1, 1)
    assert rejected == [2**63]
    assert tracker.last("k") == 105


def test_a_real_jump_is_confirmed_by_the_next_id_and_counted() -> None:
    tracker: SequenceTracker[str] = SequenceTracker(max_jump=BOUND)
    for i in (100, 101, 50_000):
        tracker.observe("k", i)
    obs = tracker.observe("k", 50_001)
    assert obs.confirmed == 50_000
    stats = tracker.stats("k")
    assert (stats.gaps, stats.missed, stats.rejected) == (1, 50_000 - 102, 0)


def test_another_signal_or_a_reconnect_confirms_a_far_jump() -> None:
    tracker: SequenceTracker[str] = SequenceTracker(max_jump=BOUND)
    tracker.observe("k", 100)
    tracker.observe("k", 101)
    assert tracker.observe("k", 90_000).kind is SequenceKind.SUSPECT
    assert tracker.skip_to("k", 90_000) is None  # a heartbeat naming it: confirmed
    assert tracker.last("k") == 90_000
    assert tracker.stats("k").missed == 90_000 - 102
    tracker.expect_jump("k")
    assert tracker.observe("k", 10**9).kind is SequenceKind.GAP


def test_a_corrupt_first_id_is_rejected_by_the_next() -> None:
    tracker: SequenceTracker[str] = SequenceTracker(max_jump=BOUND)
    tracker.observe("k", 2**63)
    assert tracker.observe("k", 7).rejected == 2**63
    assert tracker.observe("k", 9).gap == Gap(8, 8)


@given(
    st.integers(0, 10**12),
    st.lists(st.integers(1, 50), min_size=3, max_size=60),
    st.sets(st.integers(0, 59), max_size=20),
    st.integers(0, 59),
    st.integers(BOUND + 1, 2**64),
)
def test_every_real_gap_is_reported_exactly_despite_one_outlier(
    start: int, steps: list[int], dropped: set[int], at: int, offset: int
) -> None:
    ids = [start]
    for step in steps:
        ids.append(ids[-1] + (1 if step > 3 else step))  # mostly +1, some real gaps
    kept = [i for n, i in enumerate(ids) if n not in dropped or n == 0]
    position = 1 + at % len(kept)
    outlier = kept[position - 1] + offset
    stream = [*kept[:position], outlier, *kept[position:]]
    tracker: SequenceTracker[str] = SequenceTracker(max_jump=BOUND)
    gaps = []
    for seq in stream:
        obs = tracker.observe("k", seq)
        if obs.gap is not None:
            gaps.append(obs.gap)
    wanted = [Gap(a + 1, b - 1) for a, b in pairwise(kept) if b > a + 1]
    if position == len(kept):
        # The outlier came last: nothing after it decided it, so it is still held.
        assert tracker.suspect("k") == outlier
    else:
        assert tracker.stats("k").rejected == 1
    assert gaps == wanted
    assert tracker.stats("k").missed == sum(g.missed for g in wanted)


def test_a_suspect_undecided_at_the_end_is_rejected_on_request() -> None:
    rejected: list[tuple[str, int]] = []
    tracker: SequenceTracker[str] = SequenceTracker(
        max_jump=BOUND, on_reject=lambda key, seq: rejected.append((key, seq))
    )
    for i in (100, 101, 2**63):
        tracker.observe("k", i)
    assert tracker.reject("k") == 2**63
    assert rejected == [("k", 2**63)]
    assert tracker.suspect("k") is None
    assert tracker.stats("k").rejected == 1
    # Nothing held (or no such stream): nothing to reject, nothing counted.
    assert tracker.reject("k") is None
    assert tracker.reject("other") is None
    assert rejected == [("k", 2**63)]
    assert tracker.last("k") == 101
