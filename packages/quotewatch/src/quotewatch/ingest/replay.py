"""Replaying a recording through the same parse -> book -> tracker path as a live feed.

Lines are either recorded frames ``{"ts": <epoch seconds>, "msg": <frame>}`` (see
`quotewatch.ingest.record`) or bare frame objects, which get the replay's wall-clock time as their
receive time. The feed is detected from the message shapes. ``speed`` is a multiple of the
recorded pace; 0 replays as fast as possible.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from quotewatch.ingest.parser import Feed, detect_feed
from quotewatch.ingest.session import FeedSession, Frame

DETECT_LINES = 1000
_decode = orjson.loads  # several times faster than json's, on every line
# How many frames an as-fast-as-possible replay handles between yields to the event loop.
_YIELD_EVERY = 1000


class ReplayError(ValueError):
    """A recording that cannot be replayed; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did: frames handled and the wall-clock seconds it took."""

    frames: int
    duration_s: float


MAX_TS = 32_503_680_000  # year 3000 in epoch seconds


def _line_frame(line: bytes) -> tuple[int | None, Frame]:
    """A recorded line -> (receive time in µs or None, frame)."""
    try:
        obj: Any = _decode(line)
    except ValueError:
        return None, line.decode("utf-8", "replace").rstrip("\r\n")
    if type(obj) is dict and len(obj) == 2 and "msg" in obj and "ts" in obj:
        ts, msg = obj["ts"], obj["msg"]
        # A time that is no plausible epoch second (1e308, NaN, negative) is ignored: the frame
        # gets the replay's clock, as a bare frame does, rather than ending the replay.
        plausible = isinstance(ts, int | float) and 0 <= ts < MAX_TS
        received_us = round(ts * 1_000_000) if plausible else None
        return received_us, msg if isinstance(msg, dict | str) else json.dumps(msg)
    return None, obj if isinstance(obj, dict) else line.decode("utf-8", "replace")


def read_frames(path: Path) -> Iterator[tuple[int | None, Frame, int]]:
    """Every frame of a recording: (receive time in µs or None, frame, bytes of its line)."""
    with path.open("rb") as f:
        for line in f:
            if len(line) > 2 or line.strip():
                received_us, frame = _line_frame(line)
                yield received_us, frame, len(line)


def detect_recording_feed(path: Path) -> Feed:
    """The feed a recording comes from, judged from its first lines."""
    head = (frame for _, frame, _ in itertools.islice(read_frames(path), DETECT_LINES))
    feed = detect_feed(frame for frame in head if isinstance(frame, dict))
    if feed is None:
        raise ReplayError(
            f"{path}: no Exchange or Advanced Trade messages in the first {DETECT_LINES} lines; "
            'expected lines of {"ts": ..., "msg": {...}} or bare feed messages'
        )
    return feed


def open_recording(path: Path) -> tuple[Feed, int]:
    """Check a recording can be read: its feed and size in bytes."""
    if not path.is_file():
        raise ReplayError(f"{path}: no such recording; pass a file written by `quotewatch record`")
    return detect_recording_feed(path), path.stat().st_size


async def replay(
    path: Path, session: FeedSession, *, speed: float = 0.0, progress: bool = False
) -> ReplayResult:
    """Feed every frame of ``path`` to ``session`` at ``speed`` times the recorded pace."""
    if speed < 0:
        raise ReplayError(f"speed must be >= 0 (0 = as fast as possible), got {speed!r}")
    bar = (
        tqdm(total=path.stat().st_size, unit="B", unit_scale=True, file=sys.stderr)
        if progress
        else None
    )
    started = time.monotonic()
    first_us: int | None = None
    frames = 0
    handle = session.handle_frame
    try:
        with path.open("rb") as f:
            for line in f:
                if len(line) <= 2 and not line.strip():
                    continue
                recorded_us, frame = _line_frame(line)
                if recorded_us is None:
                    received_us = time.time_ns() // 1000
                else:
                    received_us = recorded_us
                    if speed > 0:
                        first_us = received_us if first_us is None else first_us
                        due = (received_us - first_us) / 1e6 / speed
                        ahead = due - (time.monotonic() - started)
                        if ahead > 0.001:
                            await asyncio.sleep(ahead)
                handle(frame, received_us)
                frames += 1
                if bar is not None:
                    bar.update(len(line))
                if frames % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
    finally:
        session.report_counts()
        if bar is not None:
            bar.close()
    return ReplayResult(frames, time.monotonic() - started)
