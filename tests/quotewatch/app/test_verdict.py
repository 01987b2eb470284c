"""The one-line verdict above the summary and the exit status of a run that lost rows
(issue 18: a run with completeness 0.0 exited 0, and the summary had no verdict)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from quotewatch.app.summary import exit_status, rows_lost, verdict, write_summary


def summary(written: int, spilled: int, expected: int = 10, gaps: int = 0) -> dict[str, Any]:
    return {
        "products": {"BTC-USD": {"trade_gaps": gaps, "trades_missed": 2 * gaps}},
        "sequence": {"gaps": 0, "missed": 0},
        "pipeline": {"rows_expected": {"raw_trades": expected, "features": 0}},
        "storage": {
            "rows_written": {"raw_trades": written, "features": 0},
            "rows_spilled": {"raw_trades": spilled, "features": 0},
            "rows_recovered": {"raw_trades": 0, "features": 0},
            "completeness": {"raw_trades": written / expected, "features": None},
        },
    }


def test_a_clean_run_is_ok_and_exits_0() -> None:
    clean = summary(10, 0)
    assert verdict(clean) == "ok: 0 gaps, completeness 100%, 0 rows lost"
    assert exit_status(clean) == 0


def test_spilled_rows_are_not_lost() -> None:
    spilled = summary(4, 6, gaps=1)
    assert rows_lost(spilled) == {}
    assert exit_status(spilled) == 0
    assert verdict(spilled) == (
        "ok: 1 gaps (2 missed), completeness 40%, 6 rows spilled (recovered at the next start), "
        "0 rows lost"
    )


def test_rows_neither_committed_nor_spilled_exit_3() -> None:
    lossy = summary(0, 3)
    assert rows_lost(lossy) == {"raw_trades": 7}
    assert exit_status(lossy) == 3
    assert verdict(lossy).startswith("LOSS: ")
    assert verdict(lossy).endswith("7 rows lost (raw_trades)")


def test_rows_restored_from_the_frame_log_are_named() -> None:
    restored = summary(10, 0)
    restored["frame_log"] = {
        "recovery": {
            "frames_replayed": 40,
            "rows_restored": {"raw_orderbook": 30, "raw_trades": 6},
            "derived_frames_lost": {"features": 25, "predictions": 40},
            "error": None,
        }
    }
    assert verdict(restored) == (
        "ok: 0 gaps, completeness 100%, 36 rows of an earlier run restored from the frame log "
        "(derived rows of 40 frames not rebuilt), 0 rows lost"
    )
    restored["frame_log"]["recovery"] = {"frames_replayed": 0, "error": "OperationalError: x"}
    assert "frame log off: committed positions unreadable at start" in verdict(restored)


def test_the_verdict_is_printed_above_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    write_summary(summary(10, 0), None)
    first, rest = capsys.readouterr().out.split("\n", 1)
    assert first == "ok: 0 gaps, completeness 100%, 0 rows lost"
    assert json.loads(rest)["storage"]["rows_spilled"] == {"raw_trades": 0, "features": 0}
