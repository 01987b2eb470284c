"""The online classifier: standardised per-sample SGD, warm-up, test-then-train scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import REGISTRY
from quotewatch.metrics import FAST_BUCKETS, LATENCY_BUCKETS
from quotewatch.pipeline.classifier import CLIP, Learning, OnlineClassifier
from quotewatch.pipeline.labeler import Labelled, Sample
from qw_metrics import StageConfigError, configure_stages

NAMES = ("a", "b", "c")


def labelled(rng: np.random.Generator, n: int, prob: float | None = None) -> list[Labelled]:
    out = []
    for _ in range(n):
        x = rng.normal(size=3) * (1.0, 10.0, 0.01) + (5.0, -3.0, 0.0)
        label = int(x[0] - 5.0 + rng.normal(scale=0.3) > 0)
        out.append(Labelled(Sample(0, 100.0, tuple(float(v) for v in x), prob), label))
    return out


def test_predictions_are_the_logistic_model_on_clipped_standardised_features() -> None:
    rng = np.random.default_rng(1)
    clf = OnlineClassifier(NAMES, warmup_per_class=20)
    seen = labelled(rng, 640)
    for i in range(0, 640, 16):  # 640 is a multiple of the rescale period: scales are fresh
        clf.learn(seen[i : i + 16])
    assert clf.ready
    x = np.array([item.sample.features for item in seen])
    mean, std = clf.standardisation
    assert mean == pytest.approx(x.mean(axis=0).tolist(), rel=1e-9, abs=1e-12)
    assert std == pytest.approx(x.std(axis=0).tolist(), rel=1e-9)
    weights, bias = clf.coefficients
    probe = rng.normal(size=(50, 3)) * (1.0, 10.0, 0.01) + (5.0, -3.0, 0.0)
    probe[0] = (50.0, -3.0, 0.0)  # an outlier: clipped to CLIP standard deviations
    scaled = np.clip((probe - np.array(mean)) / np.array(std), -CLIP, CLIP)
    expected = 1 / (1 + np.exp(-(scaled @ np.array(weights) + bias)))
    got = [clf.predict(tuple(float(v) for v in row)) for row in probe]
    assert got == pytest.approx(expected.tolist(), rel=1e-9, abs=1e-12)
    # The model learned the signal in feature "a", and does not saturate on the outlier.
    assert clf.state().weights["a"] > 5 * abs(clf.state().weights["b"])
    assert got[0] is not None
    assert got[0] < 1 - 1e-6


def test_warm_up_progress_counts_labels_and_ends_once_both_classes_were_learned() -> None:
    clf = OnlineClassifier(NAMES, warmup_per_class=15)
    ones = [Labelled(Sample(0, 1.0, (1.0, 0.0, 0.0), None), 1)] * 9
    result = clf.learn(ones)
    assert result is not None
    assert (result.samples, result.zeros, result.ones) == (9, 0, 9)
    assert clf.state().class_counts == (0, 9)  # progress moves with every label
    zeros = [Labelled(Sample(0, 1.0, (-1.0, 0.0, 0.0), None), 0)] * 15
    clf.learn(zeros)
    assert clf.state().class_counts == (15, 9)
    assert not clf.ready
    assert clf.predict((1.0, 0.0, 0.0)) is None
    clf.learn(ones[:6])
    assert clf.ready
    assert clf.state().ready
    assert clf.state().trained == 30
    p = clf.predict((1.0, 0.0, 0.0))
    assert p is not None
    assert 0.5 < p < 1.0
    assert clf.learn([]) is None


def test_labelled_predictions_are_scored_before_training_beside_the_base_rate() -> None:
    clf = OnlineClassifier(NAMES, warmup_per_class=1, score_window=3)
    hit = Labelled(Sample(0, 1.0, (0.0, 0.0, 0.0), 0.9), 1)
    miss = Labelled(Sample(0, 1.0, (0.0, 0.0, 0.0), 0.9), 0)
    unpredicted = Labelled(Sample(0, 1.0, (0.0, 0.0, 0.0), None), 0)
    clf.learn([miss, hit, hit, unpredicted])  # not ready yet: the state is refreshed
    scores = clf.state().scores
    assert scores is not None
    assert scores.samples == 3  # the unpredicted sample counts for the base rate only
    assert scores.accuracy == pytest.approx(2 / 3)
    assert clf.state().accuracy_recent == pytest.approx(2 / 3)
    # The base rate before each: 0.5/1, then (0 + .5)/2, then (1 + .5)/3.
    assert scores.log_loss_base == pytest.approx(
        -(math.log(1 - 0.5) + math.log(0.25) + math.log(0.5)) / 3
    )
    assert scores.log_loss == pytest.approx(-(math.log(0.1) + 2 * math.log(0.9)) / 3)
    assert scores.skill == pytest.approx(1 - scores.log_loss / scores.log_loss_base)


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="warm-up"):
        OnlineClassifier(NAMES, warmup_per_class=0)
    with pytest.raises(ValueError, match="eta0"):
        Learning(eta0=0)


def _predict_buckets() -> dict[float, float]:
    return {
        float(s.labels["le"]): s.value
        for family in REGISTRY.collect()
        if family.name == "ml_predict_duration_seconds"
        for s in family.samples
        if s.name.endswith("_bucket")
    }


def test_warm_up_calls_are_not_timed_and_predictions_land_in_microsecond_buckets() -> None:
    rng = np.random.default_rng(2)
    clf = OnlineClassifier(NAMES, warmup_per_class=20)
    before = _predict_buckets()
    assert clf.predict((5.0, -3.0, 0.0)) is None
    assert _predict_buckets() == before  # a warm-up call predicts nothing: not timed
    for _ in range(10):
        clf.learn(labelled(rng, 64))
    for _ in range(100):
        assert clf.predict((5.0, -3.0, 0.0)) is not None
    after = _predict_buckets()
    assert after[float("inf")] - before[float("inf")] == 100
    # A prediction takes a few microseconds: most land well below the old 50 µs first bucket.
    assert after[16e-6] - before[16e-6] >= 50
    assert min(after) == 250e-9


def test_model_scores_are_exported_by_product_and_predictor() -> None:
    rng = np.random.default_rng(4)
    clf = OnlineClassifier(NAMES, warmup_per_class=5, product="TEST-SCORES")
    clf.learn(labelled(rng, 50))
    clf.learn(labelled(rng, 300, prob=0.3))
    assert clf.state().scores is None  # refreshed at most once a second
    clf.refresh()
    scores = clf.state().scores
    assert scores is not None
    values = {
        (s.name, s.labels.get("predictor")): s.value
        for family in REGISTRY.collect()
        for s in family.samples
        if s.labels.get("product") == "TEST-SCORES"
    }
    assert values[("ml_log_loss", "model")] == pytest.approx(scores.log_loss)
    assert values[("ml_log_loss", "base_rate")] == pytest.approx(scores.log_loss_base)
    assert values[("ml_log_loss_skill", None)] == pytest.approx(scores.skill)
    assert values[("ml_roc_auc", "model")] == pytest.approx(0.5)  # one constant prediction
    assert values[("ml_scored_samples", None)] == scores.samples


def test_stage_timings_resolve_from_250_ns() -> None:
    assert FAST_BUCKETS[:3] == (250e-9, 500e-9, 1e-6)
    # The stage histogram of the process registry was configured with them (the same settings
    # again are accepted; any other buckets are refused).
    configure_stages(buckets=FAST_BUCKETS)
    with pytest.raises(StageConfigError):
        configure_stages(buckets=LATENCY_BUCKETS)
