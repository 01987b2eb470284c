"""The model earns its place on the simulated market: the demo's market, run offline (no
websocket) through the session and the pipeline as `quotewatch demo` receives it."""

from __future__ import annotations

import json
import random

import pytest
from prometheus_client import REGISTRY
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import FeedSession
from quotewatch.pipeline.pipeline import Pipeline, PipelineConfig
from quotewatch.simulate.exchange_protocol import ExchangeSession
from quotewatch.simulate.market import Market
from quotewatch.state import StateStore

START = 1_767_225_600_000_000
STEP_US = 50_000


def run_offline(seed: int, seconds: int) -> tuple[Pipeline, float | None]:
    """The default demo market (`seed`) for `seconds` of simulated time through the pipeline
    with default settings; returns it and the simulated second of its first prediction."""
    market = Market(("BTC-USD",), seed=seed, start_us=START)
    exchange = ExchangeSession(market, random.Random(seed), auth_secret=None)
    session = FeedSession(Feed.EXCHANGE, products=("BTC-USD",))
    pipeline = Pipeline(("BTC-USD",), StateStore(), None, PipelineConfig())
    session.consumers.append(pipeline.process)
    subscribe = {"type": "subscribe", "product_ids": ["BTC-USD"],
                 "channels": ["level2_batch", "heartbeat", "matches"]}  # fmt: skip
    for frame in exchange.handle(json.dumps(subscribe)):
        session.handle_frame(frame.text, START)
    first = None
    t = START
    while t < START + seconds * 1_000_000:
        t += STEP_US
        for frame in exchange.on_events(market.advance(t)):
            session.handle_frame(frame.text, t)
        if first is None and pipeline.stats.predictions:
            first = (t - START) / 1e6
    pipeline.close()  # brings the model's state up to its last label
    return pipeline, first


def trained_counter(label: str) -> float:
    return REGISTRY.get_sample_value("ml_samples_total", {"label": label}) or 0.0


@pytest.mark.parametrize("seed", [1, 2])
def test_the_model_beats_the_base_rate_on_held_back_data(seed: int) -> None:
    before = (trained_counter("0"), trained_counter("1"))
    pipeline, first = run_offline(seed, seconds=240)
    prod = pipeline.products["BTC-USD"]
    # Every label the model learned from is counted, reported in increments.
    after = (trained_counter("0"), trained_counter("1"))
    assert (after[0] - before[0], after[1] - before[1]) == prod.classifier.labels_seen
    assert sum(prod.classifier.labels_seen) == pipeline.stats.labels
    scores = prod.classifier.state().scores
    assert scores is not None
    # Every sample in the window was scored before the model trained on it: held back.
    assert scores.samples == 1000
    assert 0.05 < scores.positive_rate < 0.5  # both labels, as a lively BTC-USD gives
    assert scores.skill > 0.05
    assert scores.auc is not None
    assert scores.auc > 0.6
    assert scores.auc_base is not None
    assert scores.auc > scores.auc_base
    assert scores.brier < scores.brier_base
    # A fast warm-up, and probabilities that do not saturate.
    assert first is not None
    assert first < 10.0
    low, high = prod.predictions.quantile(0.01), prod.predictions.quantile(0.99)
    assert low is not None
    assert high is not None
    assert 0.001 < low < high < 0.999
