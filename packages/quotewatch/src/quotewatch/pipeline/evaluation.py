"""Prequential (test-then-train) scoring of the online model against the base-rate predictor.

Every labelled sample that carried a prediction is scored when its label arrives, before the
classifier trains on it, so every score is out of sample. Beside the model, each such sample is
scored for the **base-rate predictor**, which predicts the running rate of label 1 over every
labelled sample seen before it (warm-up included), smoothed as (ones + 0.5) / (n + 1). Scores
cover the last `window` scored samples:

- log loss (probabilities clipped to [1e-7, 1 - 1e-7], so one confident miss costs at most 16),
  and the headline **log-loss skill** `1 - logloss_model / logloss_base`: 0 is no better than
  the base rate, positive is better, 1 is perfect;
- Brier score (mean squared error of the probability);
- ROC AUC (how well the probability ranks moves above non-moves; 0.5 is chance), None until
  the window holds both labels;
- accuracy at 0.5, beside the base rate's, which for a rare label is the rate of the majority;
- calibration: predicted against observed rate of label 1 in 10 equal-width bins.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy.stats import rankdata

from quotewatch.state import CalibrationBin, ModelScores

_EPS = 1e-7
BINS = 10


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log likelihood of labels `y` under probabilities `p` (clipped)."""
    q = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def roc_auc(p: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half), None unless both labels are present."""
    ones = int(y.sum())
    zeros = len(y) - ones
    if ones == 0 or zeros == 0:
        return None
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - ones * (ones + 1) / 2) / (ones * zeros))


def calibration(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> tuple[CalibrationBin, ...]:
    """Mean predicted and observed rate of label 1 per equal-width probability bin; empty bins
    are left out."""
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        if n:
            out.append(
                CalibrationBin(
                    b / bins, (b + 1) / bins, float(p[mask].mean()), float(y[mask].mean()), n
                )
            )
    return tuple(out)


class Prequential:
    """Rolling test-then-train scores of the model and of the base-rate predictor."""

    __slots__ = ("_n", "_ones", "_scored", "_window")

    def __init__(self, window: int = 2000) -> None:
        if window < 2:
            raise ValueError(f"evaluation window must be >= 2 samples, got {window}")
        self._window: deque[tuple[float, float, int]] = deque(maxlen=window)
        self._n = 0  # labelled samples seen, scored or not
        self._ones = 0
        self._scored = 0

    @property
    def base_rate(self) -> float:
        """What the base-rate predictor predicts for the next sample."""
        return (self._ones + 0.5) / (self._n + 1)

    @property
    def scored(self) -> int:
        """Samples scored since the start."""
        return self._scored

    def add(self, probability: float | None, label: int) -> None:
        """Score one labelled sample (if it had a prediction), then count its label in the base
        rate; call before the model trains on it."""
        if probability is not None:
            self._window.append((probability, self.base_rate, label))
            self._scored += 1
        self._n += 1
        self._ones += label

    def scores(self) -> ModelScores | None:
        """The scores over the window, or None before anything was scored."""
        if not self._window:
            return None
        data = np.asarray(self._window, dtype=np.float64)
        p, base, y = data[:, 0], data[:, 1], data[:, 2]
        ll, ll_base = log_loss(p, y), log_loss(base, y)
        return ModelScores(
            samples=len(y),
            positive_rate=float(y.mean()),
            log_loss=ll,
            log_loss_base=ll_base,
            skill=1.0 - ll / ll_base if ll_base > 0 else 0.0,
            brier=float(np.mean((p - y) ** 2)),
            brier_base=float(np.mean((base - y) ** 2)),
            auc=roc_auc(p, y),
            auc_base=roc_auc(base, y),
            accuracy=float(np.mean((p >= 0.5) == (y == 1))),
            accuracy_base=float(np.mean((base >= 0.5) == (y == 1))),
            calibration=calibration(p, y),
        )
