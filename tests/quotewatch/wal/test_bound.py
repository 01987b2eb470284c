"""At its size bound the frame log keeps what it has, lets new frames through unlogged and says
so loudly: a warning, `wal_at_bound` and `wal_frames_unlogged_total`, and the health page."""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from quotewatch.dashboard.health import derive, outputs, render_health
from quotewatch.dashboard.sampler import MetricsSampler
from quotewatch.metrics import DEFAULT_REGISTRY
from quotewatch.wal import FrameLog
from quotewatch.wal.segments import read_segment, segment_paths
from support.storage import wait_for


def _append(frame_log: FrameLog, count: int) -> None:
    for i in range(count):
        with frame_log.lock:
            if frame_log.roll_due:
                frame_log.roll(b"{}")
            frame_log.append(f'{{"type":"match","trade_id":{i}}}', i)


def _card(sampler: MetricsSampler) -> tuple[str, str]:
    view = render_health(sampler.points(), sampler.history.window(60.0), time.time(), 10.0)
    out: dict[str, Any] = dict(zip((f"{c}.{p}" for c, p in outputs()), view.values, strict=True))
    return out["health-frame-log-value.children"], out["health-frame-log-caption.children"]


def _value(name: str) -> float:
    return DEFAULT_REGISTRY.get_sample_value(name) or 0.0


def test_at_the_bound_frames_go_through_unlogged_and_it_shows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unlogged_before = _value("wal_frames_unlogged_total")
    frame_log = FrameLog(tmp_path, fsync_interval=0.005, max_bytes=4_000)
    frame_log.recovered()
    sampler = MetricsSampler(DEFAULT_REGISTRY, derive, window=10.0)
    try:
        with caplog.at_level(logging.WARNING, "quotewatch.wal.frame_log"):
            _append(frame_log, 200)
            wait_for(lambda: frame_log.at_bound, 5, "the log to reach its bound")
        assert "frame log at its bound" in caplog.text
        kept = {p.name for p in segment_paths(tmp_path)}
        _append(frame_log, 50)  # at the bound: processed, not logged
        wait_for(lambda: _value("wal_frames_unlogged_total") - unlogged_before == 50, 5, "count")
        assert frame_log.frames_unlogged == 50
        assert {p.name for p in segment_paths(tmp_path)} == kept  # nothing given up to make room
        assert _value("wal_at_bound") == 1.0
        sampler.sample()
        sampler.sample()
        value, caption = _card(sampler)
        assert value == "AT BOUND"
        assert caption.startswith("50 frames not logged")

        # Storage catches up: the released segments go and logging resumes in a new segment.
        frame_log.release(frame_log.position)
        wait_for(lambda: not frame_log.at_bound, 5, "the log to leave its bound")
        first_new = frame_log.position + 1
        _append(frame_log, 5)
        wait_for(lambda: bool(segment_paths(tmp_path)), 5, "a new segment")
        [segment] = [read_segment(p) for p in segment_paths(tmp_path)]
        assert segment.first == first_new
        assert len(list(segment.entries())) == 5
        assert _value("wal_at_bound") == 0.0
        sampler.sample()
        assert _card(sampler)[0] == "logging"
    finally:
        frame_log.close()


def test_without_a_frame_log_the_card_reads_off() -> None:
    gc.collect()  # the frame logs of earlier tests
    sampler = MetricsSampler(DEFAULT_REGISTRY, derive, window=10.0)
    sampler.sample()
    sampler.sample()
    assert _card(sampler) == ("off", "no frame log in this process")
