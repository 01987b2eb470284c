"""Exact gap detection for streams of integer ids that should go up by one.

`SequenceTracker` follows one stream per key (a product, a connection, ...) and tells apart:

- ``NEXT``: the id expected (last + 1);
- ``GAP``: an id beyond the expected one; the ids skipped form one *gap* (a run of missing ids)
  and each of them counts as *missed*. The gap is counted at once: the streams it is made for
  are ordered (one TCP stream), so an id skipped is an id lost, not one still on its way;
- ``DUPLICATE``: an id already seen;
- ``LATE``: a missing id that arrives after all. It does NOT reduce ``missed``: counters only go
  up, and the totals must match the Prometheus counters they feed. It is counted as ``late``
  instead, so ``missed - late`` is what was never seen at all;
- ``SUSPECT`` (only with ``max_jump``): an id more than ``max_jump`` beyond the newest one. One
  corrupt id (say 2**63) must not move the mark, or every later id would look old and real
  losses would go unseen. It is held: the next id above the mark decides it. An id just above
  the suspect (at most ``max_jump`` beyond it) confirms it, and the jump counts as a gap as usual;
  an id within ``max_jump`` of the mark rejects it (counted as ``rejected``, ``on_reject`` is
  called). A first id that the next one lies more than ``max_jump`` below is rejected the
  same way, and the stream starts over. `confirm` (another signal, such as a heartbeat naming
  a newer id) and `expect_jump` (a reconnect: ids moved on while away) also let a far jump
  through; `reject` drops a suspect still undecided when the stream ends.

The tracker increments the optional ``gaps`` and ``missed`` counters itself (with the labels
``labels(key)`` returns), so instrumented code needs no metric calls of its own, and calls the
optional ``on_gap(key, gap)`` for every gap (e.g. to resynchronise).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from prometheus_client import Counter

__all__ = ["Gap", "Observation", "SequenceKind", "SequenceStats", "SequenceTracker"]

K = TypeVar("K", bound=Hashable)


class SequenceKind(StrEnum):
    """How one observed id relates to the stream so far."""

    FIRST = "first"
    NEXT = "next"
    GAP = "gap"
    DUPLICATE = "duplicate"
    LATE = "late"
    SUSPECT = "suspect"


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of missing ids, ``start`` to ``end`` inclusive."""

    start: int
    end: int

    @property
    def missed(self) -> int:
        """Number of ids in the run."""
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class Observation:
    """The verdict on one id: its kind, the id that was expected, and any gap it opened;
    ``confirmed`` / ``rejected``: a held suspect id this id decided."""

    kind: SequenceKind
    expected: int | None = None
    gap: Gap | None = None
    confirmed: int | None = None
    rejected: int | None = None


@dataclass(frozen=True, slots=True)
class SequenceStats:
    """Counts for one key (or all keys): gaps and missed ids, and the rest."""

    observed: int = 0
    gaps: int = 0
    missed: int = 0
    duplicates: int = 0
    late: int = 0
    skipped_gaps: int = 0
    skipped: int = 0
    rejected: int = 0

    def __add__(self, other: SequenceStats) -> SequenceStats:
        return SequenceStats(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )


_FIRST = Observation(SequenceKind.FIRST)
_NEXT = Observation(SequenceKind.NEXT)
_DUPLICATE = Observation(SequenceKind.DUPLICATE)
_LATE = Observation(SequenceKind.LATE)


class _Stream:
    """Position and counts of one key."""

    __slots__ = (
        "duplicates",
        "gaps",
        "high",
        "late",
        "lone",
        "missed",
        "missing",
        "observed",
        "rejected",
        "skipped",
        "skipped_gaps",
        "suspect",
        "trust_next",
    )

    def __init__(self, history: int) -> None:
        self.high: int | None = None
        # Recent missing runs as [start, end] lists, oldest first, to tell a late id from a
        # duplicate.
        self.missing: deque[list[int]] = deque(maxlen=history)
        self.observed = self.gaps = self.missed = self.duplicates = 0
        self.late = self.skipped = self.skipped_gaps = self.rejected = 0
        self.suspect: int | None = None  # an implausibly far id, held until decided
        self.trust_next = False  # the next id may be any distance ahead (after a reconnect)
        self.lone = False  # the mark is a first id that no later id has followed yet

    def stats(self) -> SequenceStats:
        return SequenceStats(
            self.observed,
            self.gaps,
            self.missed,
            self.duplicates,
            self.late,
            self.skipped_gaps,
            self.skipped,
            self.rejected,
        )


def _take(runs: deque[list[int]], seq: int) -> bool:
    """Remove ``seq`` from the run holding it (splitting the run); False if no run holds it."""
    for i, run in enumerate(runs):
        start, end = run
        if start <= seq <= end:
            if start == end:
                del runs[i]
            elif seq == start:
                run[0] = seq + 1
            elif seq == end:
                run[1] = seq - 1
            else:
                run[1] = seq - 1
                at = i + 1
                if len(runs) == runs.maxlen:
                    runs.popleft()  # a full deque refuses insert: the oldest run goes first
                    at -= 1
                runs.insert(at, [seq + 1, end])
            return True
    return False


class SequenceTracker(Generic[K]):
    """Tracks per-key id streams that should go up by one; counts gaps, missed ids and the rest.

    ``gaps`` / ``missed``: optional counters incremented for every gap, with the labels
    returned by ``labels(key)`` (required when the counters have label names).
    ``history``: how many missing runs per key are kept to recognise late ids (older late ids
    count as duplicates). ``on_gap(key, gap)`` is called for every gap, as it is found.
    ``max_jump``: ids further than this beyond the newest one are held as suspects (see the
    module doc; None: any jump is a gap); ``on_reject(key, id)`` is called for each one
    rejected.
    """

    def __init__(
        self,
        *,
        gaps: Counter | None = None,
        missed: Counter | None = None,
        labels: Callable[[K], Mapping[str, str]] | None = None,
        on_gap: Callable[[K, Gap], None] | None = None,
        history: int = 1024,
        max_jump: int | None = None,
        on_reject: Callable[[K, int], object] | None = None,
    ) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        if max_jump is not None and max_jump < 1:
            raise ValueError(f"max_jump must be >= 1 (or None for no bound), got {max_jump}")
        self._max_jump = max_jump
        self._on_reject = on_reject
        self._gaps_counter = gaps
        self._missed_counter = missed
        self._labels = labels
        self._on_gap = on_gap
        self._history = history
        self._streams: dict[K, _Stream] = {}
        self._children: dict[K, tuple[Counter | None, Counter | None]] = {}

    def __repr__(self) -> str:
        return f"SequenceTracker(keys={len(self._streams)}, history={self._history})"

    def observe(self, key: K, seq: int) -> Observation:
        """Record id ``seq`` for ``key`` and say how it relates to the stream."""
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(self._history)
        stream.observed += 1
        high = stream.high
        if high is None:
            stream.high = seq
            stream.lone = True
            return _FIRST
        if seq == high + 1 and stream.suspect is None:
            stream.high = seq
            stream.lone = False
            return _NEXT
        if seq > high:
            stream.lone = False
            return self._ahead(key, stream, high, seq)
        if stream.lone and self._max_jump is not None and high - seq > self._max_jump:
            # The first id was the corrupt one: start over from this one.
            stream.high = seq
            stream.rejected += 1
            if self._on_reject is not None:
                self._on_reject(key, high)
            return Observation(SequenceKind.FIRST, rejected=high)
        if stream.missing and _take(stream.missing, seq):
            stream.late += 1
            return _LATE
        stream.duplicates += 1
        return _DUPLICATE

    def _ahead(self, key: K, stream: _Stream, high: int, seq: int) -> Observation:
        """``seq`` is beyond the mark ``high``: the next id, a gap, or a suspect to hold or
        decide."""
        bound = self._max_jump
        suspect = stream.suspect
        confirmed = rejected = None
        if suspect is not None and bound is not None:
            if suspect < seq <= suspect + bound:
                confirmed = high = self._confirm(key, stream, suspect)
            elif seq != suspect:
                rejected = self._reject(key, stream)
            else:
                stream.duplicates += 1
                return _DUPLICATE
        if stream.trust_next:
            stream.trust_next = False
        elif bound is not None and seq - high > bound:
            stream.suspect = seq
            return Observation(SequenceKind.SUSPECT, high + 1, None, confirmed, rejected)
        stream.high = seq
        if seq == high + 1:
            if confirmed is None and rejected is None:
                return _NEXT
            return Observation(SequenceKind.NEXT, high + 1, None, confirmed, rejected)
        gap = Gap(high + 1, seq - 1)
        self._gap(key, stream, gap)
        return Observation(SequenceKind.GAP, high + 1, gap, confirmed, rejected)

    def _confirm(self, key: K, stream: _Stream, suspect: int) -> int:
        """Accept the held suspect: the ids between the mark and it are a gap. Returns it."""
        stream.suspect = None
        assert stream.high is not None
        if suspect > stream.high + 1:
            self._gap(key, stream, Gap(stream.high + 1, suspect - 1))
        stream.high = suspect
        return suspect

    def _reject(self, key: K, stream: _Stream) -> int:
        """Drop the held suspect as a corrupt id. Returns it."""
        suspect = stream.suspect
        assert suspect is not None
        stream.suspect = None
        stream.rejected += 1
        if self._on_reject is not None:
            self._on_reject(key, suspect)
        return suspect

    def confirm(self, key: K, seq: int) -> int | None:
        """Another signal says ids up to ``seq`` exist: a held suspect at most ``seq`` (and no
        more than ``max_jump`` below it) is accepted, its gap counted. Returns it, or None."""
        stream = self._streams.get(key)
        suspect = None if stream is None else stream.suspect
        if stream is None or suspect is None or self._max_jump is None:
            return None
        if not suspect <= seq <= suspect + self._max_jump:
            return None
        return self._confirm(key, stream, suspect)

    def reject(self, key: K) -> int | None:
        """Drop the suspect held for ``key`` as a corrupt id, as a rejecting id would (counted
        as ``rejected``, ``on_reject`` called): for a stream that ends with it undecided.
        Returns it, or None."""
        stream = self._streams.get(key)
        if stream is None or stream.suspect is None:
            return None
        return self._reject(key, stream)

    def expect_jump(self, key: K) -> None:
        """The next id of ``key`` may be any distance ahead (e.g. after a reconnect)."""
        stream = self._streams.get(key)
        if stream is not None:
            stream.trust_next = True

    def suspect(self, key: K) -> int | None:
        """The suspect id held for ``key``, or None."""
        stream = self._streams.get(key)
        return None if stream is None else stream.suspect

    def seed(self, key: K, seq: int) -> None:
        """Start (or restart) ``key`` at ``seq`` without counting anything: next expected is +1."""
        self.reset(key)
        self._streams[key].high = seq

    def skip_to(self, key: K, seq: int) -> Gap | None:
        """Declare, from another signal, that every id up to ``seq`` should have arrived.

        Returns the run of ids beyond the newest one that are now known to be missing, or None.
        That run is remembered (so the ids count as late if they still come) and counted in
        ``skipped_gaps`` / ``skipped``, but not in this tracker's counters: the caller
        attributes it to its own signal. An unknown key is seeded at ``seq``. It confirms a held
        suspect it reaches; with ``max_jump``, a ``seq`` further than that beyond the mark is
        rejected instead (the signal carried a corrupt id).
        """
        stream = self._streams.get(key)
        if stream is None or stream.high is None:
            self.seed(key, seq)
            return None
        self.confirm(key, seq)
        if seq <= stream.high:
            return None
        if stream.trust_next:
            stream.trust_next = False
        elif self._max_jump is not None and seq - stream.high > self._max_jump:
            stream.rejected += 1
            if self._on_reject is not None:
                self._on_reject(key, seq)
            return None
        gap = Gap(stream.high + 1, seq)
        stream.high = seq
        stream.missing.append([gap.start, gap.end])
        stream.skipped_gaps += 1
        stream.skipped += gap.missed
        return gap

    def reset(self, key: K) -> None:
        """Forget ``key``'s position (e.g. on reconnect); its counts are kept."""
        stream = self._streams.get(key)
        if stream is None:
            self._streams[key] = _Stream(self._history)
            return
        stream.high = stream.suspect = None
        stream.trust_next = False
        stream.missing.clear()

    def last(self, key: K) -> int | None:
        """The newest id seen for ``key``, or None."""
        stream = self._streams.get(key)
        return None if stream is None else stream.high

    def stats(self, key: K) -> SequenceStats:
        """Counts for one key (zeros for an unknown key)."""
        stream = self._streams.get(key)
        return SequenceStats() if stream is None else stream.stats()

    def totals(self) -> SequenceStats:
        """Counts summed over every key."""
        total = SequenceStats()
        for stream in self._streams.values():
            total = total + stream.stats()
        return total

    def keys(self) -> Iterator[K]:
        """Every key seen so far."""
        return iter(list(self._streams))

    def _gap(self, key: K, stream: _Stream, gap: Gap) -> None:
        """Count ``gap`` and remember its ids, so they count as late if they still come."""
        stream.gaps += 1
        stream.missed += gap.missed
        stream.missing.append([gap.start, gap.end])
        self._count(key, gap.missed)
        if self._on_gap is not None:
            self._on_gap(key, gap)

    def _count(self, key: K, missed: int) -> None:
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._child(self._gaps_counter, key),
                self._child(self._missed_counter, key),
            )
        gaps_child, missed_child = children
        if gaps_child is not None:
            gaps_child.inc()
        if missed_child is not None:
            missed_child.inc(missed)

    def _child(self, counter: Counter | None, key: K) -> Counter | None:
        if counter is None or self._labels is None:
            return counter
        return counter.labels(**self._labels(key))
