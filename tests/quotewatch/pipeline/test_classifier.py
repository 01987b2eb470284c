"""The online classifier: cheap predictions equal sklearn's, warm-up, mini-batches, accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import REGISTRY
from quotewatch.metrics import FAST_BUCKETS, LATENCY_BUCKETS
from quotewatch.pipeline.classifier import OnlineClassifier
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


def test_cheap_predictions_equal_sklearn_predict_proba() -> None:
    rng = np.random.default_rng(1)
    clf = OnlineClassifier(NAMES, batch_size=64, warmup_per_class=20)
    for _ in range(10):
        clf.learn(labelled(rng, 64))
    assert clf.ready
    x = rng.normal(size=(50, 3)) * (1.0, 10.0, 0.01) + (5.0, -3.0, 0.0)
    expected = clf.model.predict_proba(clf.scaler.transform(x))[:, 1]
    cheap = [clf.predict(tuple(float(v) for v in row)) for row in x]
    assert cheap == pytest.approx(expected.tolist(), rel=1e-9, abs=1e-12)
    # The model learned the signal in feature "a".
    assert clf.state().weights["a"] > abs(clf.state().weights["b"])


def test_warm_up_needs_each_class_and_training_is_in_mini_batches() -> None:
    clf = OnlineClassifier(NAMES, batch_size=10, warmup_per_class=15)
    ones = [Labelled(Sample(0, 1.0, (1.0, 0.0, 0.0), None), 1)] * 9
    assert clf.learn(ones) is None  # fewer than a batch: queued, not trained
    assert clf.state().class_counts == (0, 0)
    result = clf.learn(ones[:1])
    assert result is not None
    assert (result.samples, result.zeros, result.ones) == (10, 0, 10)
    assert clf.learn(ones + ones[:1]) is not None
    assert clf.state().class_counts == (0, 20)
    assert not clf.ready
    assert clf.predict((1.0, 0.0, 0.0)) is None
    zeros = [Labelled(Sample(0, 1.0, (-1.0, 0.0, 0.0), None), 0)] * 20
    clf.learn(zeros)
    assert clf.ready
    assert clf.state().ready
    assert clf.state().class_counts == (20, 20)
    p = clf.predict((1.0, 0.0, 0.0))
    assert p is not None
    assert 0.0 <= p <= 1.0


def test_recent_accuracy_counts_only_predicted_samples() -> None:
    clf = OnlineClassifier(NAMES, batch_size=4, accuracy_window=3)
    hit = Labelled(Sample(0, 1.0, (0.0, 0.0, 0.0), 0.9), 1)
    miss = Labelled(Sample(0, 1.0, (0.0, 0.0, 0.0), 0.9), 0)
    unpredicted = Labelled(Sample(0, 1.0, (0.0, 0.0, 0.0), None), 0)
    clf.learn([miss, hit, hit, unpredicted])  # a batch of 4: state refreshed
    assert clf.state().accuracy_recent == pytest.approx(2 / 3)
    clf.learn([hit, hit, hit, hit])  # the window keeps the last 3 predicted samples
    assert clf.state().accuracy_recent == 1.0


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="batch size"):
        OnlineClassifier(NAMES, batch_size=0)


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
    clf = OnlineClassifier(NAMES, batch_size=64, warmup_per_class=20)
    before = _predict_buckets()
    assert clf.predict((5.0, -3.0, 0.0)) is None
    assert _predict_buckets() == before  # a warm-up call predicts nothing: not timed
    for _ in range(10):
        clf.learn(labelled(rng, 64))
    for _ in range(100):
        assert clf.predict((5.0, -3.0, 0.0)) is not None
    after = _predict_buckets()
    assert after[float("inf")] - before[float("inf")] == 100
    # A prediction takes a microsecond or so: most land well below the old 50 µs first bucket.
    assert after[16e-6] - before[16e-6] >= 50
    assert min(after) == 250e-9


def test_stage_timings_resolve_from_250_ns() -> None:
    assert FAST_BUCKETS[:3] == (250e-9, 500e-9, 1e-6)
    # The stage histogram of the process registry was configured with them (the same settings
    # again are accepted; any other buckets are refused).
    configure_stages(buckets=FAST_BUCKETS)
    with pytest.raises(StageConfigError):
        configure_stages(buckets=LATENCY_BUCKETS)
