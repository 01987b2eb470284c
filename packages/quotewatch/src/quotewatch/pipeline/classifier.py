"""The online classifier: will the mid move beyond the labeler's threshold within the horizon?

Logistic regression learned by stochastic gradient descent, one labelled sample at a time, on
features standardised online (running mean and variance, Welford's), each clipped to +-CLIP
standard deviations: one learning rate then suits features whose scales differ by 10^6, and no
outlier (or feature nearly constant so far) can saturate a probability.

**Test, then train.** Every labelled sample that carried a prediction is scored (`Prequential`)
before the model learns from it; the scores ride in `ModelState.scores`, refreshed about once a
second (and at the end of a run).

**Warm-up.** The model learns from the first label on, and predicts once it has learned from
`warmup_per_class` samples of each class: within seconds on the demo. Progress
(`ModelState.class_counts`) counts labelled samples, so it moves with every label.

**Cost.** Learning one sample is about 4 µs and a prediction about 2 µs, in plain Python on six
floats: cheaper per sample than one scikit-learn `partial_fit` call (about 0.8 ms, its input
validation dominating), which is why the model does not batch. Per-sample learning also follows
the market at once: in mini-batches of 512 the model lagged each change in volatility by up to
half a minute.

**The learning configuration, chosen by measurement** (`benchmarks/bench_model.py` with its
defaults: 3 x 600 s of the simulated BTC-USD market, seeds 1-3; the mean over the three of each
score, on the samples every configuration predicted; 72 candidates):

    predictor                                     log loss  Brier   AUC    skill   p1      p99
    base rate                                     0.4249    0.1288  0.558  0.000   0.1322  0.2458
    upstream (sklearn per sample, constant 0.01)  0.3605    0.1091  0.795  0.147   0.0102  0.7189
    previous (sklearn batches of 512, "optimal")  1.8618    0.2151  0.553  -3.412  0.0000  1.0000
    ours: eta0=0.03 power_t=0.5 alpha=1e-3        0.3482    0.1074  0.805  0.180   0.0089  0.7370
    eta0=0.01 constant, alpha=1e-3                0.3505    0.1080  0.801  0.174   0.0106  0.7146
    eta0=0.01 power_t=0.5, alpha=1e-3             0.3542    0.1086  0.797  0.165   0.0182  0.6800
    eta0=0.03 constant, alpha=1e-3                0.3580    0.1106  0.796  0.157   0.0043  0.7928

Training costs 4.6 µs per labelled sample here (scoring included), against 860 µs for the
upstream configuration's per-sample `partial_fit`.

- Learning rate eta0 / (1 + t/1000)^0.5 from eta0 = 0.03: fast early, steadier later. A constant
  0.03 overshoots (worse log loss, predictions nearer 0 and 1); constant 0.01 is slower to learn.
- L2 penalty alpha = 1e-3: as good as 1e-4 or none here (0.3482 for all three), and it
  bounds the weights on a long run.
- No class weighting: weighting label 1 two or five times ranks the same (AUC) but miscalibrates
  the probabilities, which log loss punishes; none of those candidates is in the top 12.
- The previous default (scikit-learn's "optimal" rate, whose first steps are 1 / alpha large)
  saturates: its 1st and 99th percentiles are 0 and 1, and its log loss is 7x the base rate's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from qw_metrics import timed

from quotewatch.metrics import ML_PREDICT, ML_TRAIN, MODEL_SCORES
from quotewatch.pipeline.evaluation import Prequential
from quotewatch.pipeline.labeler import Labelled
from quotewatch.state import ModelState

CLIP = 4.0  # standardised features are clipped to +-CLIP
# The scores in the model state are refreshed after SCORE_EVERY scored samples, at most once per
# SCORE_INTERVAL seconds: scoring the window costs about 0.6 ms, which per 100 samples of a
# fast replay would be 6 µs a message.
SCORE_EVERY = 20
SCORE_INTERVAL = 1.0
_RESCALE_EVERY = 16  # samples between refreshes of the scales (a square root per feature)


@dataclass(frozen=True, slots=True)
class Learning:
    """SGD settings: step eta0 / (1 + t / 1000) ** power_t at sample t, L2 penalty `alpha`, and
    label 1 weighted `weight_one` times label 0."""

    eta0: float = 0.03
    power_t: float = 0.5
    alpha: float = 1e-3
    weight_one: float = 1.0

    def __post_init__(self) -> None:
        if not self.eta0 > 0:
            raise ValueError(f"learning rate eta0 must be > 0, got {self.eta0}")
        if self.power_t < 0 or self.alpha < 0 or not self.weight_one > 0:
            raise ValueError(f"power_t and alpha must be >= 0 and weight_one > 0, got {self}")


LEARNING = Learning()  # the measured choice (see the module docstring)


@dataclass(frozen=True, slots=True)
class TrainResult:
    """The labelled samples one `learn` call trained on."""

    samples: int
    zeros: int  # samples labelled 0
    ones: int  # samples labelled 1


@MODEL_SCORES.track
class OnlineClassifier:
    """Online-standardised logistic SGD, per sample, scored test-then-train."""

    __slots__ = (
        "__weakref__",
        "_bias",
        "_evaluation",
        "_feature_names",
        "_inv_scale",
        "_learning",
        "_m2",
        "_mean",
        "_n",
        "_refreshed_at",
        "_seen",
        "_state",
        "_unscored",
        "_weights",
        "product",
        "warmup_per_class",
    )

    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        warmup_per_class: int = 8,
        score_window: int = 1000,
        product: str = "",
        learning: Learning = LEARNING,
    ) -> None:
        if warmup_per_class < 1:
            raise ValueError(f"warm-up per class must be >= 1, got {warmup_per_class}")
        self._feature_names = tuple(feature_names)
        k = len(self._feature_names)
        self.product = product
        self.warmup_per_class = warmup_per_class
        self._learning = learning
        self._n = 0
        self._mean = [0.0] * k
        self._m2 = [0.0] * k
        self._inv_scale = [1.0] * k
        self._weights = [0.0] * k  # on standardised features
        self._bias = 0.0
        self._seen = [0, 0]  # labelled samples learned from, per class
        self._evaluation = Prequential(score_window)
        self._unscored = 0  # scored samples since the scores in the state were refreshed
        self._refreshed_at = 0.0
        self._state = ModelState(warmup_target=warmup_per_class)

    @property
    def ready(self) -> bool:
        """True once predictions are made (warm-up done)."""
        return self._state.ready

    @property
    def evaluation(self) -> Prequential:
        """The prequential scores (read-only use)."""
        return self._evaluation

    @property
    def standardisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The running mean and standard deviation per feature (1 where it is still 0)."""
        return tuple(self._mean), tuple(1.0 / s for s in self._inv_scale)

    @property
    def coefficients(self) -> tuple[tuple[float, ...], float]:
        """The weights on the standardised features, and the intercept."""
        return tuple(self._weights), self._bias

    @property
    def labels_seen(self) -> tuple[int, int]:
        """Labelled samples learned from so far, (label 0, label 1), up to the last label."""
        return self._seen[0], self._seen[1]

    def state(self) -> ModelState:
        """The model's state as of the last labels."""
        return self._state

    def predict(self, features: Sequence[float]) -> float | None:
        """P(label 1) for one feature vector, or None during warm-up."""
        # A warm-up call predicts nothing: timing it would fill the histogram with no-ops.
        return self._probability(features) if self._state.ready else None

    @timed(ML_PREDICT)
    def _probability(self, features: Sequence[float]) -> float:
        return _sigmoid(self._score(features))

    def _score(self, features: Sequence[float]) -> float:
        z = self._bias
        for w, x, m, inv in zip(self._weights, features, self._mean, self._inv_scale, strict=True):
            s = (x - m) * inv
            z += w * (CLIP if s > CLIP else -CLIP if s < -CLIP else s)
        return z

    def learn(self, labelled: Sequence[Labelled]) -> TrainResult | None:
        """Score the labelled samples' predictions, then learn from them; None for no labels."""
        if not labelled:
            return None
        evaluation = self._evaluation
        for item in labelled:
            p = item.sample.probability
            evaluation.add(p, item.label)
            if p is not None:
                self._unscored += 1
        result = self.train(labelled)
        if not self._state.ready or (
            self._unscored >= SCORE_EVERY
            and time.monotonic() - self._refreshed_at >= SCORE_INTERVAL
        ):
            self.refresh()
        return result

    @timed(ML_TRAIN)
    def train(self, labelled: Sequence[Labelled]) -> TrainResult:
        """One SGD step per labelled sample, after updating the standardisation with it."""
        cfg = self._learning
        mean, m2, inv_scale, weights = self._mean, self._m2, self._inv_scale, self._weights
        k = len(weights)
        ones = 0
        for item in labelled:
            x, y = item.sample.features, item.label
            ones += y
            self._n = n = self._n + 1
            for j in range(k):
                delta = x[j] - mean[j]
                mean[j] += delta / n
                m2[j] += delta * (x[j] - mean[j])
            if n < 64 or n % _RESCALE_EVERY == 0:
                for j in range(k):
                    var = m2[j] / n
                    inv_scale[j] = 1.0 / math.sqrt(var) if var > 1e-24 else 1.0
            z = self._bias
            scaled = []
            for j in range(k):
                s = (x[j] - mean[j]) * inv_scale[j]
                s = CLIP if s > CLIP else -CLIP if s < -CLIP else s
                scaled.append(s)
                z += weights[j] * s
            grad = _sigmoid(z) - y
            if y:
                grad *= cfg.weight_one
            eta = cfg.eta0 if cfg.power_t == 0 else cfg.eta0 / (1 + n / 1000) ** cfg.power_t
            shrink = 1.0 - eta * cfg.alpha
            for j in range(k):
                weights[j] = weights[j] * shrink - eta * grad * scaled[j]
            self._bias -= eta * grad
            self._seen[y] += 1
        return TrainResult(samples=len(labelled), zeros=len(labelled) - ones, ones=ones)

    def refresh(self) -> None:
        """Bring the state's counts, weights and scores up to the last label."""
        self._unscored = 0
        self._refreshed_at = time.monotonic()
        scores = self._evaluation.scores()
        seen = self._seen
        self._state = replace(
            self._state,
            ready=min(seen) >= self.warmup_per_class,
            class_counts=(seen[0], seen[1]),
            trained=seen[0] + seen[1],
            scores=scores,
            accuracy_recent=None if scores is None else scores.accuracy,
            weights=MappingProxyType(dict(zip(self._feature_names, self._weights, strict=True))),
        )


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
