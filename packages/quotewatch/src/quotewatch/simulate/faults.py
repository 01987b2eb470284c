"""Fault injection for the local exchange, and exact counters of every fault injected.

Match drops happen at the source (the trade never leaves the exchange, as Coinbase warns can
happen), so they are the same for every connection. Frame drops, duplicates and malformed frames
happen per connection, decided by that connection's own seeded generator. Every injected fault is
recorded in `Injected`, so a test can assert exact gap counts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from quotewatch.simulate.market import Bursts, Event, Match


class FaultConfigError(ValueError):
    """A fault option has a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Faults:
    """What to break. Probabilities are per frame (per trade for `drop_matches`)."""

    drop_matches: float = 0.0
    drop_frames: float = 0.0
    disconnect_every: float | None = None
    malformed: float = 0.0
    duplicates: float = 0.0
    burst_factor: float = 1.0
    burst_every: float | None = None
    burst_duration: float = 0.0

    def __post_init__(self) -> None:
        for name in ("drop_matches", "drop_frames", "malformed", "duplicates"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise FaultConfigError(f"{name} is a probability in [0, 1], got {value!r}")
        if self.disconnect_every is not None and not self.disconnect_every > 0:
            raise FaultConfigError(
                f"disconnect_every must be > 0 seconds, got {self.disconnect_every!r}"
            )
        if not self.burst_factor >= 1.0:
            raise FaultConfigError(f"burst_factor must be >= 1, got {self.burst_factor!r}")
        if self.burst_every is not None and not 0 < self.burst_duration <= self.burst_every:
            raise FaultConfigError(
                f"burst_duration must be in (0, burst_every={self.burst_every}], "
                f"got {self.burst_duration!r}"
            )

    @property
    def bursts(self) -> Bursts:
        """The burst schedule for the market model."""
        return Bursts(self.burst_factor, self.burst_every, self.burst_duration)


@dataclass
class ConnectionRecord:
    """Faults injected into one connection."""

    connection_id: int
    protocol: str  # "exchange" or "advanced"
    dropped_frames: int = 0
    dropped_sequence_nums: list[int] = field(default_factory=list)  # Advanced only
    dropped_trade_ids: dict[str, list[int]] = field(default_factory=dict)  # in dropped frames
    malformed: int = 0
    duplicates: int = 0
    duplicated_trade_ids: dict[str, list[int]] = field(default_factory=dict)  # sent twice
    disconnected: str | None = None  # why the server closed it, if it did

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "connection_id": self.connection_id,
            "protocol": self.protocol,
            "dropped_frames": self.dropped_frames,
            "dropped_sequence_nums": list(self.dropped_sequence_nums),
            "dropped_trade_ids": {p: list(ids) for p, ids in self.dropped_trade_ids.items()},
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "duplicated_trade_ids": {p: list(ids) for p, ids in self.duplicated_trade_ids.items()},
            "disconnected": self.disconnected,
        }


@dataclass
class Injected:
    """Everything the local exchange broke on purpose, exactly."""

    dropped_trades: dict[str, list[int]] = field(default_factory=dict)  # product -> trade ids
    connections: dict[int, ConnectionRecord] = field(default_factory=dict)
    disconnects: int = 0

    @property
    def malformed(self) -> int:
        """Malformed frames sent, over all connections."""
        return sum(c.malformed for c in self.connections.values())

    @property
    def duplicates(self) -> int:
        """Duplicate frames sent, over all connections."""
        return sum(c.duplicates for c in self.connections.values())

    @property
    def dropped_frames(self) -> int:
        """Frames dropped, over all connections."""
        return sum(c.dropped_frames for c in self.connections.values())

    def missing_trade_ids(self, connection_id: int) -> dict[str, list[int]]:
        """Trade ids one connection never got: dropped at the source or in its dropped frames."""
        out = {p: list(ids) for p, ids in self.dropped_trades.items()}
        for product, ids in self.connections[connection_id].dropped_trade_ids.items():
            out.setdefault(product, []).extend(ids)
        return {p: sorted(ids) for p, ids in out.items() if ids}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, as `--faults-json` writes it."""
        return {
            "dropped_trades": {p: list(ids) for p, ids in self.dropped_trades.items()},
            "dropped_frames": self.dropped_frames,
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "disconnects": self.disconnects,
            "connections": [c.as_dict() for c in self.connections.values()],
        }


class MatchDropper:
    """Drops matches at the source with probability `rate`, recording their trade ids."""

    def __init__(self, rate: float, seed: int, injected: Injected) -> None:
        self._rate = rate
        self._rng = random.Random(f"quotewatch-simulate:{seed}:drop-matches")
        self._injected = injected

    def filter(self, events: list[Event]) -> list[Event]:
        """The events without the dropped matches."""
        if not self._rate:
            return events
        out: list[Event] = []
        for event in events:
            if isinstance(event, Match) and self._rng.random() < self._rate:
                self._injected.dropped_trades.setdefault(event.product, []).append(event.trade_id)
            else:
                out.append(event)
        return out


@dataclass(frozen=True, slots=True)
class Frame:
    """One outgoing frame. Only `stream` frames (not acks, snapshots, errors) get faults."""

    text: str
    stream: bool = True
    trade_ids: tuple[tuple[str, int], ...] = ()  # (product, trade_id) carried
    sequence_num: int | None = None
    tail: str = ""  # Advanced Trade: the text after the `sequence_num`, not yet given
    time_us: int = 0  # simulated time it was produced at
    body: Any = None  # what a malformed copy may be based on (an l2 update or a match)


class ConnectionFaults:
    """Applies drops, duplicates and malformed frames to one connection's outgoing frames."""

    def __init__(
        self,
        faults: Faults,
        rng: random.Random,
        record: ConnectionRecord,
        malformed_frame: Callable[[random.Random, Frame], str],
        number: Callable[[Frame], Frame],
    ) -> None:
        self._faults = faults
        self._rng = rng
        self.record = record
        self._malformed_frame = malformed_frame
        self._number = number

    def apply(self, frames: Iterable[Frame]) -> list[str]:
        """The texts to send for `frames`, after faults."""
        faults, rng, record = self._faults, self._rng, self.record
        out: list[str] = []
        for unsent in frames:
            frame = self._number(unsent)
            if not frame.stream:
                out.append(frame.text)
                continue
            if faults.drop_frames and rng.random() < faults.drop_frames:
                record.dropped_frames += 1
                if frame.sequence_num is not None:
                    record.dropped_sequence_nums.append(frame.sequence_num)
                for product, trade_id in frame.trade_ids:
                    record.dropped_trade_ids.setdefault(product, []).append(trade_id)
                continue
            out.append(frame.text)
            if faults.duplicates and rng.random() < faults.duplicates:
                record.duplicates += 1
                for product, trade_id in frame.trade_ids:
                    record.duplicated_trade_ids.setdefault(product, []).append(trade_id)
                out.append(frame.text)
            if faults.malformed and rng.random() < faults.malformed:
                record.malformed += 1
                out.append(self._malformed_frame(rng, frame))
        return out
