"""Model quality: the online classifier's prequential scores on a recording, against baselines.

A recording (by default the simulator's: `--seconds` of each of `--seeds` simulated BTC-USD
markets, Exchange `level2_batch` as `quotewatch demo` receives it; or any `.jsonl` given) is run
once through the real path (parser, books, features, labeler, pipeline), logging every call the
pipeline makes to its classifier: the features it predicts from, and the labels as they arrive.
That log is then played against each configuration in turn, test-then-train exactly as the
pipeline does, so every configuration sees the same samples and labels in the same order.

Rows: the base rate (the running rate of label 1), the upstream configuration (scikit-learn's
scaler and `SGDClassifier`, per-sample `partial_fit`, `learning_rate="constant"`, `eta0=0.01`),
the previous default (the same in 512-sample batches, `learning_rate="optimal"`), ours, and the
candidates the choice was made from (`Learning` settings), best log loss first. Columns: log
loss, Brier score, ROC AUC, log-loss skill against the base rate, the 1st/99th percentile of
predictions, and training cost per labelled sample (wall time in `learn`, scoring included).
All rows are scored on the samples every configuration predicted.

Run: `uv run --locked python benchmarks/bench_model.py [--seconds 600] [--seeds 1,2,3] [FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

START_US = 1_767_225_600_000_000


def simulated_recording(path: Path, seed: int, seconds: float) -> None:
    """Write `seconds` of the simulated market as `quotewatch demo` receives it."""
    from quotewatch.simulate.exchange_protocol import ExchangeSession
    from quotewatch.simulate.market import Market

    market = Market(("BTC-USD",), seed=seed, start_us=START_US)
    session = ExchangeSession(market, random.Random(seed), auth_secret=None)
    subscribe = {"type": "subscribe", "product_ids": ["BTC-USD"],
                 "channels": ["level2_batch", "heartbeat", "matches"]}  # fmt: skip
    with path.open("w") as f:
        for frame in session.handle(json.dumps(subscribe)):
            f.write(json.dumps({"ts": START_US / 1e6, "msg": json.loads(frame.text)}) + "\n")
        t, end = START_US, START_US + int(seconds * 1e6)
        while t < end:
            t += 50_000
            for frame in session.on_events(market.advance(t)):
                f.write(json.dumps({"ts": t / 1e6, "msg": json.loads(frame.text)}) + "\n")


Log = list[tuple[str, Any]]


def classifier_log(recording: Path) -> Log:
    """Replay `recording` through the pipeline; return its classifier calls, in order."""
    import quotewatch.pipeline.pipeline as pipeline_module
    from quotewatch.ingest.replay import open_recording, replay
    from quotewatch.ingest.session import FeedSession
    from quotewatch.pipeline.classifier import OnlineClassifier
    from quotewatch.state import StateStore

    log: Log = []

    class Recorder(OnlineClassifier):
        __slots__ = ()

        def predict(self, features: Any) -> float | None:
            log.append(("P", features))
            return super().predict(features)

        def learn(self, labelled: Any) -> Any:
            log.append(("L", [(item.sample.features, item.label) for item in labelled]))
            return super().learn(labelled)

    pipeline_module.OnlineClassifier = Recorder  # type: ignore[misc]
    try:
        feed, _size = open_recording(recording)
        session = FeedSession(feed, connection_label="*")
        pipeline = pipeline_module.Pipeline(None, StateStore(), None, replay=True)
        session.consumers.append(pipeline.process)
        asyncio.run(replay(recording, session))
    finally:
        pipeline_module.OnlineClassifier = OnlineClassifier  # type: ignore[misc]
    if len(pipeline.products) != 1:
        raise SystemExit(f"{recording}: expected one product, found {sorted(pipeline.products)}")
    return log


class SklearnClassifier:
    """The way the model used to learn: scikit-learn's `StandardScaler` and `SGDClassifier`,
    both `partial_fit` on batches of `batch` labelled samples; predicts once it has trained on
    `warmup` samples of each class."""

    def __init__(self, batch: int, sgd: Mapping[str, Any], warmup: int) -> None:
        from sklearn.linear_model import SGDClassifier
        from sklearn.preprocessing import StandardScaler

        self.batch, self.warmup = batch, warmup
        self.scaler = StandardScaler()
        self.model = SGDClassifier(loss="log_loss", random_state=0, **sgd)
        self.x: list[Any] = []
        self.y: list[int] = []
        self.counts = [0, 0]

    def predict(self, features: Any) -> float | None:
        if min(self.counts) < self.warmup:
            return None
        x = self.scaler.transform(np.asarray([features]))
        return float(self.model.predict_proba(x)[0, 1])

    def learn(self, labelled: Any) -> None:
        for item in labelled:
            self.x.append(item.sample.features)
            self.y.append(item.label)
        if len(self.y) >= self.batch:
            x = np.asarray(self.x)
            self.scaler.partial_fit(x)
            self.model.partial_fit(self.scaler.transform(x), self.y, classes=[0, 1])
            self.counts[0] += self.y.count(0)
            self.counts[1] += self.y.count(1)
            self.x, self.y = [], []


def play(log: Log, make: Any) -> dict[str, Any]:
    """Run one classifier over the log, test-then-train; its predictions per sample."""
    from quotewatch.pipeline.labeler import Labelled, Sample

    clf = make()
    predicted: dict[int, float | None] = {}
    index: dict[int, int] = {}
    scored: dict[int, tuple[float, int]] = {}
    spent, labels = 0.0, 0
    for kind, payload in log:
        if kind == "P":
            key = id(payload)
            index.setdefault(key, len(index))
            predicted[key] = clf.predict(payload)
        else:
            items = []
            for features, label in payload:
                p = predicted.get(id(features))
                if p is not None:
                    scored[index[id(features)]] = (p, label)
                items.append(Labelled(Sample(0, 0.0, features, p), label))
            started = time.perf_counter()
            clf.learn(items)
            spent += time.perf_counter() - started
            labels += len(items)
    return {"scored": scored, "train_us": spent / max(1, labels) * 1e6}


def labels_in_order(log: Log) -> list[tuple[int, int]]:
    """(sample index, label) in the order labels arrived."""
    index: dict[int, int] = {}
    out = []
    for kind, payload in log:
        if kind == "P":
            index.setdefault(id(payload), len(index))
        else:
            out.extend((index[id(f)], label) for f, label in payload)
    return out


def scores(p: np.ndarray, y: np.ndarray, base_ll: float) -> dict[str, float]:
    """The table's columns for predictions `p` of labels `y`."""
    from quotewatch.pipeline.evaluation import log_loss, roc_auc

    ll = log_loss(p, y)
    auc = roc_auc(p, y)
    p1, p99 = np.percentile(p, [1, 99])
    return {"log_loss": ll, "brier": float(np.mean((p - y) ** 2)),
            "auc": float("nan") if auc is None else auc, "skill": 1 - ll / base_ll,
            "p1": float(p1), "p99": float(p99)}  # fmt: skip


def main() -> None:
    from quotewatch.pipeline.classifier import LEARNING, Learning, OnlineClassifier
    from quotewatch.pipeline.pipeline import PipelineConfig
    from quotewatch.rows import FEATURE_NAMES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", nargs="?", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    defaults = PipelineConfig()
    warmup = defaults.warmup_per_class

    def ours(learning: Learning) -> Any:
        return lambda: OnlineClassifier(FEATURE_NAMES, warmup_per_class=warmup, learning=learning)

    configs: dict[str, Any] = {
        "upstream (sklearn per sample, constant 0.01)": lambda: SklearnClassifier(
            1, {"learning_rate": "constant", "eta0": 0.01}, warmup),
        "previous (sklearn batches of 512, optimal)": lambda: SklearnClassifier(512, {}, warmup),
        "ours": ours(LEARNING),
    }  # fmt: skip
    for eta0, power_t, alpha, weight_one in itertools.product(
        (0.003, 0.01, 0.03, 0.1), (0.0, 0.5), (0.0, 1e-4, 1e-3), (1.0, 2.0, 5.0)
    ):
        learning = Learning(eta0=eta0, power_t=power_t, alpha=alpha, weight_one=weight_one)
        name = f"eta0={eta0:g} power_t={power_t:g} alpha={alpha:g} weight_one={weight_one:g}"
        configs[name] = ours(learning)

    if args.recording is not None:
        recordings = [args.recording]
    else:
        tmp = Path("/tmp") / f"qw-bench-model-{int(time.time())}"
        tmp.mkdir()
        recordings = []
        for seed in (int(s) for s in args.seeds.split(",")):
            path = tmp / f"sim-seed{seed}.jsonl"
            simulated_recording(path, seed, args.seconds)
            recordings.append(path)

    rows: dict[str, list[dict[str, float]]] = {name: [] for name in ("base rate", *configs)}
    for recording in recordings:
        log = classifier_log(recording)
        order = labels_in_order(log)
        runs = {}
        for name, make in configs.items():
            runs[name] = play(log, make)
        common = set.intersection(*(set(r["scored"]) for r in runs.values()))
        base: dict[int, float] = {}
        n = ones = 0
        for i, label in order:
            base[i] = (ones + 0.5) / (n + 1)
            n, ones = n + 1, ones + label
        keys = sorted(common)
        y = np.array([runs["ours"]["scored"][k][1] for k in keys], dtype=np.float64)
        pb = np.array([base[k] for k in keys])
        from quotewatch.pipeline.evaluation import log_loss

        base_ll = log_loss(pb, y)
        rows["base rate"].append({**scores(pb, y, base_ll), "train_us": 0.0})
        for name, run in runs.items():
            p = np.array([run["scored"][k][0] for k in keys])
            rows[name].append({**scores(p, y, base_ll), "train_us": run["train_us"]})
        print(f"# {recording.name}: {len(keys)} samples scored by every configuration, "
              f"label rate {y.mean():.3f}", flush=True)  # fmt: skip

    def mean(name: str, key: str) -> float:
        return float(np.mean([r[key] for r in rows[name]]))

    fixed = ["base rate", *list(configs)[:3]]
    candidates = sorted(list(configs)[3:], key=lambda n: mean(n, "log_loss"))
    header = (f"{'predictor':<52} {'log loss':>9} {'Brier':>8} {'AUC':>7} {'skill':>8} "
              f"{'p1':>7} {'p99':>7} {'train µs/sample':>16}")  # fmt: skip
    print(f"mean over {len(recordings)} recording(s)")
    print(header)
    print("-" * len(header))
    for name in [*fixed, *candidates[:12]]:
        print(f"{name:<52} {mean(name, 'log_loss'):>9.4f} {mean(name, 'brier'):>8.4f} "
              f"{mean(name, 'auc'):>7.3f} {mean(name, 'skill'):>8.3f} {mean(name, 'p1'):>7.4f} "
              f"{mean(name, 'p99'):>7.4f} {mean(name, 'train_us'):>16.1f}")  # fmt: skip
    print(f"({len(candidates)} candidates; the 12 best by log loss shown)")


if __name__ == "__main__":
    main()
