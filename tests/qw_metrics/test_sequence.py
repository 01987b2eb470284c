"""SequenceTracker: gaps, missed ids, duplicates and late ids, per key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter
from qw_metrics import Gap, SequenceKind, SequenceTracker

starts = st.integers(min_value=0, max_value=10**12)
lengths = st.integers(min_value=2, max_value=300)


def runs_of(removed: set[int]) -> int:
    """Number of maximal runs of consecutive ids in ``removed``."""
    return sum(1 for i in removed if i - 1 not in removed)


@given(starts, lengths)
def test_contiguous_stream_has_no_gaps(start: int, n: int) -> None:
    tracker: SequenceTracker[str] = SequenceTracker()
    kinds = [tracker.observe("k", i).kind for i in range(start, start + n)]
    assert kinds[0] is SequenceKind.FIRST
    assert set(kinds[1:]) == {SequenceKind.NEXT}
    stats = tracker.stats("k")
    assert (stats.observed, stats.gaps, stats.missed, stats.duplicates) == (n, 0, 0, 0)
    assert tracker.last("k") == start + n - 1


@given(starts, lengths, st.data())
def test_removed_ids_count_as_runs_and_missed(start: int, n: int, data: st.DataObject) -> None:
    interior = list(range(start + 1, start + n - 1))
    removed = set(data.draw(st.lists(st.sampled_from(interior), unique=True)) if interior else [])
    tracker: SequenceTracker[str] = SequenceTracker()
    for i in range(start, start + n):
        if i not in removed:
            tracker.observe("k", i)
    stats = tracker.stats("k")
    assert stats.gaps == runs_of(removed)
    assert stats.missed == len(removed)
    assert stats.duplicates == stats.late == 0


@given(starts, lengths, st.data())
def test_duplicates_are_not_gaps(start: int, n: int, data: st.DataObject) -> None:
    ids = list(range(start, start + n))
    dup_positions = data.draw(st.lists(st.integers(0, n - 1), max_size=20))
    stream: list[int] = []
    for pos, i in enumerate(ids):
        stream.append(i)
        stream.extend(ids[max(0, pos - 3) : pos + 1] * dup_positions.count(pos))
    tracker: SequenceTracker[str] = SequenceTracker()
    for i in stream:
        tracker.observe("k", i)
    stats = tracker.stats("k")
    assert (stats.gaps, stats.missed) == (0, 0)
    assert stats.duplicates == len(stream) - n


@given(starts, lengths, st.data())
def test_an_id_out_of_order_is_a_gap_at_once_then_late(
    start: int, n: int, data: st.DataObject
) -> None:
    # Swap some disjoint adjacent pairs: each swap skips one id (a gap) that comes right after.
    ids = list(range(start, start + n))
    swaps = set(data.draw(st.lists(st.integers(1, n - 2), max_size=20))) if n > 2 else set()
    swaps = {i for i in swaps if i - 1 not in swaps}
    for i in sorted(swaps):
        ids[i], ids[i + 1] = ids[i + 1], ids[i]
    gaps: list[Gap] = []
    tracker: SequenceTracker[str] = SequenceTracker(on_gap=lambda _k, gap: gaps.append(gap))
    kinds = [tracker.observe("k", i).kind for i in ids]
    assert gaps == [Gap(start + i, start + i) for i in sorted(swaps)]
    for i in swaps:
        assert (kinds[i], kinds[i + 1]) == (SequenceKind.GAP, SequenceKind.LATE)
    stats = tracker.stats("k")
    assert (stats.gaps, stats.missed, stats.late) == (len(swaps), len(swaps), len(swaps))
    assert stats.duplicates == 0


def test_late_id_after_a_confirmed_gap_is_late_not_duplicate() -> None:
    tracker: SequenceTracker[str] = SequenceTracker()
    assert tracker.observe("k", 1).kind is SequenceKind.FIRST
    obs = tracker.observe("k", 5)
    assert obs.kind is SequenceKind.GAP
    assert (obs.expected, obs.gap) == (2, Gap(2, 4))
    assert tracker.observe("k", 3).kind is SequenceKind.LATE
    assert tracker.observe("k", 3).kind is SequenceKind.DUPLICATE
    stats = tracker.stats("k")
    # A late id never reduces missed (counters only go up); it is counted as late instead.
    assert (stats.gaps, stats.missed, stats.late, stats.duplicates) == (1, 3, 1, 1)


L, D = SequenceKind.LATE, SequenceKind.DUPLICATE


@pytest.mark.parametrize(
    ("history", "kinds"),
    [(1, [D, L, D]), (2, [L, L, D]), (1024, [L, L, L])],
)
def test_a_late_id_inside_a_run_splits_it_and_history_bounds_the_runs_kept(
    history: int, kinds: list[SequenceKind]
) -> None:
    tracker: SequenceTracker[str] = SequenceTracker(history=history)
    for i in (1, 3, 9):  # runs 2 and 4-8 go missing
        tracker.observe("k", i)
    # 6 splits 4-8 in two: with a full history the oldest run is forgotten first, so late ids
    # there count as duplicates, as the class docstring says
    assert tracker.observe("k", 6).kind is L
    assert [tracker.observe("k", i).kind for i in (5, 7, 2)] == kinds
    stats = tracker.stats("k")
    assert (stats.gaps, stats.missed, stats.late) == (2, 6, 1 + kinds.count(L))


def test_reset_forgets_the_position_and_keeps_the_counts() -> None:
    tracker: SequenceTracker[int] = SequenceTracker()
    for i in (0, 1, 2, 4):
        tracker.observe(7, i)
    tracker.reset(7)
    assert tracker.last(7) is None
    assert tracker.observe(7, 0).kind is SequenceKind.FIRST
    assert tracker.observe(7, 1).kind is SequenceKind.NEXT
    assert tracker.stats(7).gaps == 1


def test_seed_sets_the_next_expected_id() -> None:
    tracker: SequenceTracker[str] = SequenceTracker()
    tracker.seed("k", 100)
    assert tracker.observe("k", 101).kind is SequenceKind.NEXT
    assert tracker.observe("k", 103).gap == Gap(102, 102)


def test_skip_to_reports_tail_loss_without_counting_it_as_a_gap() -> None:
    tracker: SequenceTracker[str] = SequenceTracker()
    tracker.observe("k", 10)
    assert tracker.skip_to("k", 13) == Gap(11, 13)
    assert tracker.skip_to("k", 12) is None
    assert tracker.observe("k", 12).kind is SequenceKind.LATE
    assert tracker.observe("k", 14).kind is SequenceKind.NEXT
    stats = tracker.stats("k")
    assert (stats.gaps, stats.skipped_gaps, stats.skipped) == (0, 1, 3)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 50)), max_size=200))
def test_keys_are_independent(events: list[tuple[str, int]]) -> None:
    together: SequenceTracker[str] = SequenceTracker()
    apart = {k: SequenceTracker[str]() for k in "abc"}
    for key, seq in events:
        assert together.observe(key, seq) == apart[key].observe(key, seq)
    for key in "abc":
        assert together.stats(key) == apart[key].stats(key)
    assert together.totals().observed == len(events)


def test_counters_are_incremented_with_the_key_labels() -> None:
    registry = CollectorRegistry()
    gaps = Counter("gaps", "g", ["product", "source"], registry=registry)
    missed = Counter("missed", "m", ["product", "source"], registry=registry)
    tracker: SequenceTracker[str] = SequenceTracker(
        gaps=gaps, missed=missed, labels=lambda k: {"product": k, "source": "trade_id"}
    )
    for i in (1, 2, 5, 6, 9):
        tracker.observe("BTC-USD", i)
    labels = {"product": "BTC-USD", "source": "trade_id"}
    assert registry.get_sample_value("gaps_total", labels) == 2
    assert registry.get_sample_value("missed_total", labels) == 4


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="history"):
        SequenceTracker(history=0)
