"""The pipeline on simulated Exchange traffic, through a real FeedSession."""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY
from quotewatch.events import Level, Trade
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import FeedSession
from quotewatch.pipeline.pipeline import Pipeline, PipelineConfig
from quotewatch.rows import FEATURE_NAMES
from quotewatch.state import StateStore
from support.exchange_frames import exchange_frames


class RecordingSink:
    """Keeps rows in memory, with the storage writer's submit_* shape."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {
            "raw_orderbook": [], "raw_trades": [], "features": [], "predictions": []
        }  # fmt: skip

    def submit_orderbook(
        self, product: str, time_us: int, received_us: int, bids: Sequence[Level],
        asks: Sequence[Level],
    ) -> None:  # fmt: skip
        self.rows["raw_orderbook"].append({"product": product, "bids": bids, "asks": asks})

    def submit_trade(self, trade: Trade) -> None:
        self.rows["raw_trades"].append({"trade_id": trade.trade_id, "side": trade.taker_side})

    def submit_feature_values(
        self, product: str, time_us: int, received_us: int, values: tuple[float | None, ...]
    ) -> None:
        self.rows["features"].append(dict(zip(("mid", *FEATURE_NAMES), values, strict=True)))

    def submit_prediction(
        self, product: str, time_us: int, received_us: int, *, horizon_seconds: float,
        probability: float, predicted_class: int, label: int | None, labelled_us: int | None,
    ) -> None:  # fmt: skip
        self.rows["predictions"].append(
            {"time_us": time_us, "p": probability, "cls": predicted_class, "label": label,
             "labelled_us": labelled_us, "horizon": horizon_seconds}
        )  # fmt: skip


def expected_rows(table: str) -> float:
    return REGISTRY.get_sample_value("pipeline_rows_expected_total", {"table": table}) or 0.0


def run(seconds: float, config: PipelineConfig) -> tuple[Pipeline, RecordingSink, StateStore]:
    store = StateStore()
    sink = RecordingSink()
    session = FeedSession(Feed.EXCHANGE, products=("BTC-USD",))
    pipeline = Pipeline(("BTC-USD",), store, sink, config, replay=True)
    session.consumers.append(pipeline.process)
    for text, received_us in exchange_frames(seconds=seconds, rate=3.0):
        session.handle_frame(text, received_us)
    return pipeline, sink, store


@pytest.fixture(scope="module")
def ran() -> tuple[Pipeline, RecordingSink, StateStore, dict[str, float]]:
    before = {
        t: expected_rows(t) for t in ("raw_orderbook", "raw_trades", "features", "predictions")
    }
    config = PipelineConfig(warmup_per_class=20, label_threshold=0.00002)
    pipeline, sink, store = run(120.0, config)
    pipeline.close()
    delta = {t: expected_rows(t) - before[t] for t in before}
    return pipeline, sink, store, delta


def test_every_row_is_produced_and_counted(ran: Any) -> None:
    pipeline, sink, _, delta = ran
    stats = pipeline.stats
    assert stats.book_updates > 5000
    assert len(sink.rows["raw_orderbook"]) == stats.book_updates + 1  # + the snapshot
    assert len(sink.rows["features"]) == stats.samples
    assert len(sink.rows["raw_trades"]) == stats.trades > 100
    assert {t: len(rows) for t, rows in sink.rows.items()} == delta
    # Every prediction is written once: labelled, or (at close / evicted) with a null label.
    predictions = sink.rows["predictions"]
    assert len(predictions) == stats.predictions
    assert len({p["time_us"] for p in predictions}) == len(predictions)
    labelled = [p for p in predictions if p["label"] is not None]
    assert len(labelled) > 0.9 * len(predictions)
    assert all(p["labelled_us"] - p["time_us"] >= 500_000 for p in labelled)
    assert all(p["cls"] == int(p["p"] >= 0.5) for p in predictions)


def test_state_reflects_the_book_and_the_model(ran: Any) -> None:
    _, sink, store, _ = ran
    snap = store.current()
    state = snap.products["BTC-USD"]
    assert set(state.features) == set(FEATURE_NAMES)
    assert state.best_bid is not None
    assert state.best_ask is not None
    assert state.best_bid < state.best_ask
    assert state.mid == pytest.approx((state.best_bid + state.best_ask) / 2)
    assert sink.rows["features"][-1]["mid"] == state.mid
    assert state.model.ready
    assert min(state.model.class_counts) >= 20
    assert state.model.accuracy_recent is not None
    assert set(state.model.weights) == set(FEATURE_NAMES)
    assert state.probability is not None
    assert 0 < len(state.candles) <= 120
    assert state.candles[-1].close == state.mid
    assert state.trades
    assert state.trades[-1].time_us <= state.time_us
    assert snap.feed.messages > 0
    labels = Counter(p["label"] for p in sink.rows["predictions"])
    assert labels[0] > 0
    assert labels[1] > 0


def test_rows_expected_are_read_at_collect_time_without_keeping_the_pipeline() -> None:
    before = expected_rows("raw_trades")
    pipeline = Pipeline(["BTC-USD"], StateStore(), RecordingSink())
    pipeline.stats.rows["raw_trades"] += 3  # as `_write_trade` counts a submitted row
    assert expected_rows("raw_trades") == before + 3  # no report needed: read when collected
    gone = weakref.ref(pipeline)
    del pipeline
    gc.collect()
    assert gone() is None
    assert expected_rows("raw_trades") == before + 3  # a finished pipeline's rows still count
