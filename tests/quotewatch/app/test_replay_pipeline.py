"""`quotewatch replay` through the whole pipeline into real Iceberg storage (a SQLite catalog and
a file warehouse in a tmp dir): the backtest of the model, and the tables it leaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from quotewatch.cli import main
from support.exchange_frames import exchange_frames
from support.storage import read_table

TABLES = ("raw_orderbook", "raw_trades", "features", "predictions")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 s of the simulated BTC-USD market as the demo receives it, as `quotewatch record`
    writes it."""
    path = tmp_path_factory.mktemp("rec") / "btc.jsonl"
    frames = exchange_frames(("BTC-USD",), seconds=90.0, seed=1, channel="level2_batch",
                             depth=1000)  # fmt: skip
    path.write_text(
        "".join(json.dumps({"ts": us / 1e6, "msg": json.loads(text)}) + "\n" for text, us in frames)
    )
    return path


def replayed(args: list[str], summary_path: Path) -> dict[str, Any]:
    assert main(["replay", *args, "--summary-json", str(summary_path)]) == 0
    summary: dict[str, Any] = json.loads(summary_path.read_text())
    return summary


def test_replay_into_storage_is_complete_reads_back_equal_and_scores_the_model(
    recording: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    summary = replayed([str(recording), "--data-dir", str(data)], tmp_path / "s.json")
    pipeline, storage, model = summary["pipeline"], summary["storage"], summary["model"]
    expected = pipeline["rows_expected"]
    assert all(expected[t] > 0 for t in TABLES)
    assert storage["completeness"] == dict.fromkeys(TABLES, 1.0)
    assert storage["rows_written"] == expected
    # The tables read back through a fresh catalog agree with the summary and with each other.
    rows = {t: read_table(data, t) for t in TABLES}
    assert {t: len(r) for t, r in rows.items()} == expected
    assert expected["predictions"] == pipeline["predictions"]
    assert expected["features"] == pipeline["samples"]
    trade_ids = [r["trade_id"] for r in rows["raw_trades"]]
    assert len(set(trade_ids)) == len(trade_ids) == summary["products"]["BTC-USD"]["trades"]
    labelled = [r for r in rows["predictions"] if r["label"] is not None]
    assert 0 < len(labelled) <= pipeline["labels"]
    assert all(0.0 < float(r["probability"]) < 1.0 for r in rows["predictions"])  # type: ignore[arg-type]
    # The backtest: prequential scores for the recording, beside the base rate's.
    scores = model["products"]["BTC-USD"]["scores"]
    assert model["ready"] is True
    assert scores["window"] > 500
    assert scores["skill"] == model["skill"]
    assert scores["skill"] > 0.0
    assert scores["auc"] > 0.6
    assert scores["log_loss"] < scores["log_loss_base"]
    assert sum(b["samples"] for b in scores["calibration"]) == scores["window"]
    assert 0.001 < model["products"]["BTC-USD"]["prediction_p01"] < 0.5
    assert 0.5 < model["products"]["BTC-USD"]["prediction_p99"] < 0.999


def test_feed_only_keeps_the_fast_parse_and_gap_check(recording: Path, tmp_path: Path) -> None:
    summary = replayed([str(recording), "--feed-only"], tmp_path / "s.json")
    assert "pipeline" not in summary
    assert "model" not in summary
    assert summary["products"]["BTC-USD"]["trades"] > 100


def test_replay_without_storage_has_no_storage_section(recording: Path, tmp_path: Path) -> None:
    summary = replayed([str(recording), "--no-storage"], tmp_path / "s.json")
    assert "storage" not in summary
    assert summary["model"]["products"]["BTC-USD"]["trained"] == summary["pipeline"]["labels"]


def test_a_missing_recording_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such recording" in caplog.text
