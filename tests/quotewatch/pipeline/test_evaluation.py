"""Prequential scores: the same numbers as scikit-learn's metrics, over a rolling window."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quotewatch.pipeline.evaluation import Prequential, calibration, log_loss, roc_auc
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

pairs = st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 1)), min_size=2, max_size=200)


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_log_loss_auc_and_calibration_agree_with_sklearn(data: list[tuple[float, int]]) -> None:
    p = np.array([d[0] for d in data])
    y = np.array([d[1] for d in data], dtype=np.float64)
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    assert log_loss(p, y) == pytest.approx(sk_log_loss(y, clipped, labels=[0, 1]), rel=1e-9)
    auc = roc_auc(p, y)
    if 0 < y.sum() < len(y):
        assert auc == pytest.approx(roc_auc_score(y, p), rel=1e-9)
    else:
        assert auc is None
    bins = calibration(p, y)
    assert sum(b.samples for b in bins) == len(p)
    for b in bins:
        assert b.low <= b.predicted <= b.high
        assert 0.0 <= b.observed <= 1.0


def test_a_model_that_predicts_the_base_rate_has_no_skill() -> None:
    evaluation = Prequential(window=100)
    rng = np.random.default_rng(0)
    for _ in range(500):
        evaluation.add(evaluation.base_rate, int(rng.random() < 0.2))
    scores = evaluation.scores()
    assert scores is not None
    assert scores.samples == 100
    assert scores.skill == pytest.approx(0.0, abs=1e-12)
    assert scores.log_loss == pytest.approx(scores.log_loss_base)


def test_an_informative_model_has_positive_skill_and_auc() -> None:
    evaluation = Prequential(window=1000)
    rng = np.random.default_rng(1)
    for _ in range(2000):
        p = rng.uniform(0.02, 0.6)
        evaluation.add(p, int(rng.random() < p))
    scores = evaluation.scores()
    assert scores is not None
    assert scores.skill > 0.1
    assert scores.auc is not None
    assert scores.auc > 0.7
    assert scores.auc_base is not None
    assert abs(scores.auc_base - 0.5) < 0.1
    assert scores.accuracy_base == pytest.approx(1 - scores.positive_rate)
    assert 5 <= len(scores.calibration) <= 7


def test_nothing_scored_yet() -> None:
    evaluation = Prequential()
    evaluation.add(None, 1)
    assert evaluation.scores() is None
    assert evaluation.base_rate == pytest.approx(1.5 / 2)
    with pytest.raises(ValueError, match="window"):
        Prequential(window=1)
