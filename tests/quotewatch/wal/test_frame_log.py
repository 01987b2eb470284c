"""FrameLog bookkeeping: positions, segments, release and the size bound (hypothesis), and the
guarantees around them: one process per log, nothing written without a checkpoint first."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quotewatch.wal import FrameLog, FrameLogBusyError
from quotewatch.wal.segments import BlockKind, EntryKind, read_segment, segment_paths

# One step: append `n` frames, start a connection, release up to the newest position minus
# `back`, or let the log thread run a cycle.
step = st.one_of(
    st.tuples(st.just("frames"), st.integers(1, 40)),
    st.tuples(st.just("connect"), st.just(0)),
    st.tuples(st.just("release"), st.integers(0, 60)),
    st.tuples(st.just("wait"), st.just(0)),
)


def _feed(frame_log: FrameLog, item: object, received_us: int, checkpoints: dict[int, bytes]):
    """What FeedSession does per frame: roll if due (with a checkpoint), then append."""
    with frame_log.lock:
        if frame_log.roll_due:
            state = f'{{"at": {frame_log.position + 1}}}'.encode()
            checkpoints[frame_log.position + 1] = state
            frame_log.roll(state)
        if item is None:
            frame_log.connected(received_us)
        else:
            frame_log.append(item, received_us)


def _feed_texts(frame_log: FrameLog, numbers: range, checkpoints: dict[int, bytes]) -> None:
    """Frames "frame <i>" received at i µs, for each i in `numbers`."""
    for i in numbers:
        _feed(frame_log, f"frame {i}", i, checkpoints)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(step, max_size=25), max_bytes=st.sampled_from([400, 2_000, 1 << 20]))
def test_every_position_is_on_disk_released_or_counted_unlogged(steps, max_bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        frame_log = FrameLog(directory, fsync_interval=0.002, max_bytes=max_bytes)
        frame_log.recovered()
        appended: dict[int, tuple[EntryKind, int, bytes]] = {}
        checkpoints: dict[int, bytes] = {}
        released = -1
        for kind, n in steps:
            if kind == "frames":
                for _ in range(n):
                    position = frame_log.position + 1
                    # Some not ASCII: a group of them takes the log thread's general path.
                    text = f'{{"type":"match","n":{position}{"é" if position % 7 == 0 else ""}}}'
                    _feed(frame_log, text, 1_000 + position, checkpoints)
                    appended[position] = (EntryKind.TEXT, 1_000 + position, text.encode())
            elif kind == "connect":
                position = frame_log.position + 1
                _feed(frame_log, None, 5, checkpoints)
                appended[position] = (EntryKind.CONNECT, 5, b"")
            elif kind == "release":
                released = max(released, frame_log.position - n)
                frame_log.release(released)
            else:
                time.sleep(0.004)
        unlogged = frame_log.frames_unlogged
        frame_log.close()

        assert frame_log.position == len(appended) - 1
        on_disk: dict[int, tuple[EntryKind, int, bytes]] = {}
        for path in segment_paths(directory):
            read = read_segment(path)
            assert not read.torn
            opening = read.blocks[0]
            assert opening.kind is BlockKind.CHECKPOINT
            assert opening.checkpoint == checkpoints[read.first]
            for entry in read.entries():
                assert entry.position not in on_disk
                on_disk[entry.position] = (entry.kind, entry.received_us, entry.payload)
        # What is on disk is exactly what was appended there.
        assert all(appended[p] == e for p, e in on_disk.items())
        # Every position past the release is on disk, unless the bound made it go unlogged (an
        # unlogged frame may be released since).
        missing = [p for p in appended if p > released and p not in on_disk]
        assert len(missing) <= unlogged
        if max_bytes == 1 << 20:
            assert unlogged == 0
            assert missing == []


def test_a_second_process_on_the_same_log_is_refused(tmp_path: Path) -> None:
    first = FrameLog(tmp_path)
    try:
        with pytest.raises(FrameLogBusyError, match="its own --data-dir"):
            FrameLog(tmp_path)
    finally:
        first.close()
    FrameLog(tmp_path).close()  # free again once the first is closed


def test_a_clean_close_after_everything_is_released_leaves_no_segment(tmp_path: Path) -> None:
    frame_log = FrameLog(tmp_path, fsync_interval=0.01)
    checkpoints: dict[int, bytes] = {}
    _feed_texts(frame_log, range(100), checkpoints)
    time.sleep(0.05)
    assert len(segment_paths(tmp_path)) == 1
    frame_log.release(frame_log.position)
    frame_log.close()
    assert segment_paths(tmp_path) == []


def test_earlier_segments_are_kept_until_recovery_is_done(tmp_path: Path) -> None:
    checkpoints: dict[int, bytes] = {}
    earlier = FrameLog(tmp_path)
    _feed_texts(earlier, range(10), checkpoints)
    earlier.close()
    later = FrameLog(tmp_path, fsync_interval=0.01)
    assert later.start == 10  # positions go on from the earlier run's
    _feed_texts(later, range(10), checkpoints)
    later.release(later.position)
    time.sleep(0.05)
    # Released, but replay has not taken the earlier run's frames yet.
    assert [read_segment(p).first for p in segment_paths(tmp_path)] == [0, 10]
    later.recovered()
    later.close()
    assert segment_paths(tmp_path) == []


def test_a_failed_write_is_counted_and_positions_go_on_in_a_new_segment(tmp_path: Path) -> None:
    frame_log = FrameLog(tmp_path, fsync_interval=0.01)
    checkpoints: dict[int, bytes] = {}
    _feed_texts(frame_log, range(5), checkpoints)
    time.sleep(0.05)
    # The disk fills up: /dev/full fails every write with ENOSPC.
    frame_log._file = Path("/dev/full").open("wb")  # noqa: SIM115
    _feed_texts(frame_log, range(5, 8), checkpoints)
    time.sleep(0.05)
    assert frame_log.frames_unlogged == 3
    _feed_texts(frame_log, range(8, 10), checkpoints)
    frame_log.close()
    reads = [read_segment(p) for p in segment_paths(tmp_path)]
    positions = [e.position for read in reads for e in read.entries()]
    payloads = [e.payload for read in reads for e in read.entries()]
    assert positions == [0, 1, 2, 3, 4, 8, 9]
    assert payloads == [f"frame {i}".encode() for i in (0, 1, 2, 3, 4, 8, 9)]
    assert [read.first for read in reads] == [0, 8]  # the new segment opens at the next frame
