"""A corrupt trade_id or sequence_num far ahead does not blind gap detection (issue 18)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from quotewatch.cli import main
from quotewatch.events import Trade
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import FeedSession
from quotewatch.ingest.summary import feed_summary
from support.coinbase_messages import ADVANCED, EXCHANGE


def match(trade_id: int) -> str:
    msg = copy.deepcopy(EXCHANGE["match"])
    msg["trade_id"] = trade_id
    return json.dumps(msg)


def test_a_trade_id_near_2_63_is_rejected_and_the_loss_of_103_still_counts() -> None:
    seen: list[int] = []
    session = FeedSession(
        Feed.EXCHANGE,
        products=["BTC-USD"],
        consumers=[lambda e, _b: seen.append(e.trade_id) if isinstance(e, Trade) else None],
    )
    for trade_id in (100, 101, 2**63, 102, 104, 105):
        session.handle_frame(match(trade_id), 1)
    summary = feed_summary(session, 1.0)
    assert summary["products"]["BTC-USD"]["trades_missed"] == 1
    assert summary["products"]["BTC-USD"]["trade_gaps"] == 1
    assert summary["invalid"] == {"id_out_of_range": 1}
    assert seen == [100, 101, 102, 104, 105]


def test_a_real_jump_is_held_then_passed_on_when_the_next_trade_confirms_it() -> None:
    seen: list[int] = []
    session = FeedSession(
        Feed.EXCHANGE,
        products=["BTC-USD"],
        consumers=[lambda e, _b: seen.append(e.trade_id) if isinstance(e, Trade) else None],
        max_id_jump=1_000,
    )
    for trade_id in (100, 101, 50_000, 50_001):
        session.handle_frame(match(trade_id), 1)
    summary = feed_summary(session, 1.0)
    assert summary["products"]["BTC-USD"]["trades_missed"] == 50_000 - 102
    assert summary["invalid"] == {}
    assert seen == [100, 101, 50_000, 50_001]


def test_a_sequence_num_near_2_63_is_rejected() -> None:
    session = FeedSession(Feed.ADVANCED, products=["BTC-USD"], connection_label="c")
    for seq in (0, 1, 2**63, 2, 4, 5):
        msg = copy.deepcopy(ADVANCED["heartbeats"])
        msg["sequence_num"] = seq
        session.handle_frame(json.dumps(msg), 1)
    summary = feed_summary(session, 1.0)
    assert (summary["sequence"]["gaps"], summary["sequence"]["missed"]) == (1, 1)
    assert summary["invalid"] == {"id_out_of_range": 1}


def test_a_suspect_trade_still_held_when_the_feed_ends_is_counted_invalid() -> None:
    seen: list[int] = []
    session = FeedSession(
        Feed.EXCHANGE,
        products=["BTC-USD"],
        consumers=[lambda e, _b: seen.append(e.trade_id) if isinstance(e, Trade) else None],
    )
    for trade_id in (100, 101, 2**63):
        session.handle_frame(match(trade_id), 1)
    assert feed_summary(session, 1.0)["invalid"] == {}  # held: no later id decided it yet
    session.close()
    summary = feed_summary(session, 1.0)
    assert summary["invalid"] == {"id_out_of_range": 1}
    assert summary["products"]["BTC-USD"]["trades"] == 2
    assert seen == [100, 101]
    session.close()  # a second close finds nothing held
    assert feed_summary(session, 1.0)["invalid"] == {"id_out_of_range": 1}


def recording_ending_on_a_suspect(tmp_path: Path) -> Path:
    recording = tmp_path / "rec.jsonl"
    ids = (7, 8, 2**63)
    lines = [{"ts": 1_780_000_000.0 + i, "msg": json.loads(match(t))} for i, t in enumerate(ids)]
    recording.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return recording


@pytest.mark.parametrize("feed_only", [True, False])
def test_a_replay_ending_on_a_suspect_trade_reports_it_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_only: bool
) -> None:
    recording = recording_ending_on_a_suspect(tmp_path)
    # Without --feed-only the replay runs through the Runner, whose shutdown closes the session.
    more = ["--feed-only"] if feed_only else ["--no-storage", "--data-dir", str(tmp_path)]
    assert main(["replay", str(recording), "--speed", "0", *more]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{") :])
    assert summary["invalid"] == {"id_out_of_range": 1}
    assert summary["products"]["BTC-USD"]["trades"] == 2
