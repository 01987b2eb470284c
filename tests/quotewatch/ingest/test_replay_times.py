"""A recorded line's `ts` that is no plausible time does not end a replay (it raised
OverflowError for 1e308)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quotewatch.ingest.replay import read_frames


@pytest.mark.parametrize("ts", [1e308, -1.0, 1e11 * 1e3, "soon"])
def test_an_implausible_ts_gives_the_frame_no_recorded_time(tmp_path: Path, ts: object) -> None:
    path = tmp_path / "rec.jsonl"
    frame = {"type": "heartbeat", "product_id": "BTC-USD"}
    good = json.dumps({"ts": 1_700_000_000.5, "msg": frame})
    bad = json.dumps({"ts": ts, "msg": frame}, allow_nan=True)
    path.write_text(f"{good}\n{bad}\n", encoding="utf-8")
    frames = list(read_frames(path))
    assert [(received, msg) for received, msg, _ in frames] == [
        (1_700_000_000_500_000, frame),
        (None, frame),
    ]
