"""`FrameLog`: every received frame appended to a segmented local log before it is processed.

The feed loop appends under `lock`, which `FeedSession.handle_frame` holds for the whole of one
frame: appending only puts the frame on a list, so the feed loop never waits on the disk. A
thread of the log's own writes what was appended as one block every `fsync_interval` seconds
and fsyncs it (see `segments.py` for the format).

Positions number the log's entries (frames and connection starts). A run's first position is
the later of the log's end and the wall clock in microseconds, so positions only ever grow
from run to run (a wiped log directory cannot make a later run reuse positions a commit
already recorded), as long as fewer than a million frames a second arrive.

The storage writer reads `position` under the same lock when it takes rows from its buffers,
so the position a commit records (`quotewatch.frame-position` in the snapshot) covers whole
frames: every row of every frame up to it is in that table. It calls `release` with the
position up to which every raw table's rows are durable (committed or spilled); segments
wholly below it are deleted. Until `recovered()` (the earlier runs' frames replayed and their
rows durable) the earlier runs' segments are kept whatever is released.

Segments roll at `segment_bytes`: the log thread marks the roll due, and the feed loop opens
the next segment with a checkpoint of the session (`FeedSession.checkpoint`) before its next
frame. The log is bounded by `max_bytes`: once its segments reach the bound, it keeps what it
has (the oldest uncommitted segment included) and new frames go through the pipeline unlogged,
counted, with a warning; once storage has released enough, logging resumes in a new segment.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from qw_metrics import counted, timed

from quotewatch.metrics import (
    FRAME_LOG_GAUGES,
    WAL_BYTES_WRITTEN,
    WAL_FRAMES_UNLOGGED,
    WAL_FSYNC_DURATION,
)
from quotewatch.wal.segments import (
    EntryKind,
    encode_checkpoint,
    encode_entries,
    encode_joined,
    read_segment,
    segment_first,
    segment_name,
    segment_paths,
)

log = logging.getLogger(__name__)

DEFAULT_FSYNC_INTERVAL = 0.2
DEFAULT_MAX_BYTES = 1 << 30
# A segment is at most an eighth of the bound (and 64 MiB), so releasing one frees a useful
# part of it, and replay after a crash starts at most one segment before what it needs.
MAX_SEGMENT_BYTES = 64 << 20


class FrameLogBusyError(RuntimeError):
    """Another process holds the frame log's directory."""


class _Connect:
    """The marker of a new connection in the pending entries."""


CONNECT = _Connect()


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    """The marker of a new segment: its first position and the session's state there."""

    position: int
    state: bytes


@dataclass(slots=True)
class _Segment:
    first: int
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class LogCycle:
    """What one pass of the log thread did and found."""

    bytes: int
    unlogged: int


@dataclass(frozen=True, slots=True)
class LogState:
    """The log's state, for the summary and the health page."""

    directory: str
    segments: int
    bytes: int
    max_bytes: int
    at_bound: bool
    frames_unlogged: int


@FRAME_LOG_GAUGES.track
class FrameLog:
    """The frame log under `directory`; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync_interval: float = DEFAULT_FSYNC_INTERVAL,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if not fsync_interval > 0 or max_bytes < 1:
            raise ValueError(
                f"need fsync_interval > 0 and max_bytes >= 1, got fsync_interval="
                f"{fsync_interval!r}, max_bytes={max_bytes!r}"
            )
        self.directory = directory
        self.fsync_interval = fsync_interval
        self.max_bytes = max_bytes
        self.segment_bytes = min(MAX_SEGMENT_BYTES, max(1, max_bytes // 8))
        directory.mkdir(parents=True, exist_ok=True)
        self._flock = _lock_directory(directory)
        self._segments = [_Segment(segment_first(p), p, p.stat().st_size) for p in
                          segment_paths(directory)]  # fmt: skip
        # The earlier runs' entries end here; their segments are kept until replayed.
        self.start = read_segment(self._segments[-1].path).end if self._segments else 0
        self._protect_below = self.start
        self.first = max(self.start, time.time_ns() // 1000)  # this run's first position
        # False until the earlier runs' frames are replayed and their rows durable: until then
        # a table with no rows in flight does not hold every row of the frames so far.
        self.live = False
        self.lock = threading.Lock()
        self.position = self.start - 1  # the newest position given out (replay sets it too)
        self.roll_due = True  # this run's first frame opens a segment with a checkpoint
        self.at_bound = False
        self.frames_unlogged = 0
        self._unlogged_reported = 0
        self._pending: list[Any] = []
        self._times: list[int] = []
        self._rolls: list[int] = []  # indices in `_pending` of the segment checkpoints
        self._released = -1
        self._file: IO[bytes] | None = None
        self._next = self.first  # the next entry's position; each segment's checkpoint sets it
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="frame-log", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"FrameLog({str(self.directory)!r}, position={self.position})"

    # --- the feed loop, holding `lock` ---------------------------------------------------------

    def append(self, frame: object, received_us: int) -> None:
        """Log one frame (str, bytes or a decoded dict) received at `received_us`."""
        self.position += 1
        if self.at_bound:
            self.frames_unlogged += 1
            return
        self._pending.append(frame)
        self._times.append(received_us)

    def connected(self, received_us: int) -> None:
        """Log the start of a connection (replay empties the books there, as the session did)."""
        self.append(CONNECT, received_us)

    def roll(self, checkpoint: bytes) -> None:
        """Open a new segment at the next position, with the session's state there."""
        self.roll_due = False
        self._rolls.append(len(self._pending))
        self._pending.append(_Checkpoint(self.position + 1, checkpoint))
        self._times.append(0)

    # --- any thread ----------------------------------------------------------------------------

    def release(self, position: int) -> None:
        """Every raw row of every frame up to `position` is durable: its segments may go."""
        self._released = max(self._released, position)

    def recovered(self) -> None:
        """The earlier runs' frames are replayed and their rows durable: their segments may go
        once released."""
        self._protect_below = 0
        self.live = True

    def advance_to(self, position: int) -> None:
        """Give out positions after `position` from now on (at least); call before the first
        frame."""
        with self.lock:
            self.position = max(self.position, position)

    def state(self) -> LogState:
        """Segments, bytes and the bound, now."""
        segments = list(self._segments)
        return LogState(
            str(self.directory),
            len(segments),
            sum(s.size for s in segments),
            self.max_bytes,
            self.at_bound,
            self.frames_unlogged,
        )

    def close(self, timeout: float = 5.0) -> None:
        """Write and fsync what is pending, delete released segments and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(max(0.0, timeout))
        if self._thread.is_alive():
            log.error("frame log did not finish writing within %.1fs", timeout)
            return
        fcntl.flock(self._flock, fcntl.LOCK_UN)
        self._flock.close()

    # --- the log thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.fsync_interval):
            self._cycle()
        self._cycle(final=True)

    @counted(WAL_BYTES_WRITTEN, amount=lambda cycle: cycle.bytes)
    @counted(WAL_FRAMES_UNLOGGED, amount=lambda cycle: cycle.unlogged)
    def _cycle(self, *, final: bool = False) -> LogCycle:
        """Write and fsync what was appended, delete released segments, check the bound."""
        with self.lock:
            items, self._pending = self._pending, []
            times, self._times = self._times, []
            rolls, self._rolls = self._rolls, []
            unlogged = self.frames_unlogged - self._unlogged_reported
            self._unlogged_reported = self.frames_unlogged
        written = 0
        try:
            written = self._write(items, times, rolls)
        except OSError as exc:
            # The frames still go through; only their protection against a crash is lost. What
            # reached the segment is unknown, so positions go on in a new one.
            log.error("frame log: cannot write %d entries, counted unlogged: %s", len(items), exc)
            self._abandon_segment(len(items) - len(rolls))
        # At the bound nothing is appended, so once a pass found nothing pending the open
        # segment can go too, when released: otherwise a log whose one segment filled the bound
        # would stay there.
        self._delete_released(final or (self.at_bound and not items))
        self._check_bound()
        if final and self._file is not None:
            self._file.close()
            self._file = None
        return LogCycle(written, unlogged)

    def _write(self, items: list[Any], times: list[int], rolls: list[int]) -> int:
        """Write `items` (frames and markers; those at the indices `rolls` open segments)."""
        written = 0
        start = 0
        for at in [*rolls, len(items)]:
            written += self._write_entries(items[start:at], times[start:at])
            if at < len(items):
                written += self._open_segment(items[at])
            start = at + 1
        if written and self._file is not None:
            self._fsync(self._file.fileno())
            if self._segments[-1].size >= self.segment_bytes:
                self.roll_due = True
        return written

    def _abandon_segment(self, unlogged: int) -> None:
        """Stop writing to the open segment, count `unlogged` entries; the next frame opens a
        new segment."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        with self.lock:
            self.roll_due = True
            self.frames_unlogged += unlogged

    def _write_entries(self, entries: list[Any], times: list[int]) -> int:
        if not entries:
            return 0
        if self._file is None:  # appended after a failed write, before the next segment
            with self.lock:
                self.frames_unlogged += len(entries)
            return 0
        # Text frames, and ASCII ones, are nearly all of them: the block is then built by C
        # loops with a few allocations a group, since this thread's time holding the GIL is
        # time the feed loop waits.
        text = "".join(entries) if set(map(type, entries)) == {str} else None
        if text is not None and text.isascii():
            text_kinds = bytes(len(entries))  # EntryKind.TEXT is 0
            block = encode_joined(self._next, text_kinds, times, map(len, entries), text.encode())
        else:
            kinds, payloads = _encoded(entries)
            block = encode_entries(self._next, kinds, times, payloads)
        self._file.write(block)
        self._file.flush()
        self._next += len(entries)
        self._segments[-1].size += len(block)
        return len(block)

    def _open_segment(self, checkpoint: _Checkpoint) -> int:
        """Close the current segment (fsynced) and start one at the checkpoint's position."""
        if self._file is not None:
            self._file.flush()
            self._fsync(self._file.fileno())
            self._file.close()
        path = self.directory / segment_name(checkpoint.position)
        self._file = path.open("wb")
        block = encode_checkpoint(checkpoint.position, checkpoint.state)
        self._file.write(block)
        self._file.flush()
        self._segments.append(_Segment(checkpoint.position, path, len(block)))
        self._next = checkpoint.position
        _fsync_directory(self.directory)
        return len(block)

    @timed(WAL_FSYNC_DURATION)
    def _fsync(self, fd: int) -> None:
        os.fsync(fd)

    def _delete_released(self, open_too: bool) -> None:
        """Delete segments whose every position is released (the open one too if `open_too`)."""
        released = self._released
        keep: list[_Segment] = []
        segments = self._segments
        for i, segment in enumerate(segments):
            current = i == len(segments) - 1
            last = (self._next if current else segments[i + 1].first) - 1
            protected = segment.first < self._protect_below
            done = last <= released and not protected and (open_too or not current)
            if done and current and self._file is not None:
                self._file.close()
                self._file = None
            if not done:
                keep.append(segment)
                continue
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
        self._segments = keep

    def _check_bound(self) -> None:
        size = sum(s.size for s in self._segments)
        if size >= self.max_bytes and not self.at_bound:
            with self.lock:
                self.at_bound = True
                self.roll_due = False  # nothing to open a segment for until below the bound
            log.warning(
                "frame log at its bound (%d of %d bytes in %s): new frames are processed but "
                "not logged until storage commits; a crash now loses their rows",
                size, self.max_bytes, self.directory,
            )  # fmt: skip
        elif size < self.max_bytes and self.at_bound:
            with self.lock:
                self.at_bound = False
                self.roll_due = True
            log.warning("frame log below its bound again: logging resumes")


def _encoded(entries: list[Any]) -> tuple[list[int], list[bytes]]:
    """Kinds and payloads of entries of any kind: text, binary, decoded dicts, connects."""
    kinds: list[int] = []
    payloads: list[bytes] = []
    for item in entries:
        if isinstance(item, str):
            kinds.append(EntryKind.TEXT)
            payloads.append(item.encode())
        elif isinstance(item, bytes):
            kinds.append(EntryKind.BINARY)
            payloads.append(item)
        elif item is CONNECT:
            kinds.append(EntryKind.CONNECT)
            payloads.append(b"")
        else:
            kinds.append(EntryKind.TEXT)
            payloads.append(orjson.dumps(item))
    return kinds, payloads


def _lock_directory(directory: Path) -> IO[str]:
    handle = (directory / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FrameLogBusyError(
            f"the frame log {directory} is in use by another quotewatch process: give each "
            f"run its own --data-dir"
        ) from None
    return handle


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
