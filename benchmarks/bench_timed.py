"""Cost of qw_metrics `timed`, `counted`, `recorded` and the lean metrics against
prometheus_client, side by side, on both of qw_metrics' paths: the C fast path and the
pure-Python fallback (what an install without a C compiler runs).

Run: uv run --locked python benchmarks/bench_timed.py

Prints raw ns per call and net ns (raw minus the same thing uninstrumented: a bare no-op call
for decorators, an empty loop body for `with` blocks) and the net ratio qw/prometheus. Targets
for the `timed` decorator's net ratio: <= 0.05 on the C path, <= 0.35 on the fallback.
prometheus_client has no decorator that counts or records results, so those peers are the
hand-written call after the function (`labels(...).inc()`, `observe(value)`). Best of several
repeats; the machine may be busy, so the numbers are indicative.
"""

from __future__ import annotations

import timeit

import prometheus_client
import qw_metrics
from prometheus_client import CollectorRegistry
from qw_metrics import _values

NUMBER = 100_000
REPEAT = 15
BUCKETS = qw_metrics.timing.STAGE_BUCKETS
TARGETS = {"C": 0.05, "Python": 0.35}


def best_ns(stmts: list[str], namespace: dict[str, object]) -> list[float]:
    """Best ns per run of each statement, timed in interleaved rounds so that a busy machine
    slows them alike."""
    timers = [timeit.Timer(stmt, globals=namespace) for stmt in stmts]
    best = [float("inf")] * len(stmts)
    for _ in range(REPEAT):
        for i, timer in enumerate(timers):
            best[i] = min(best[i], timer.timeit(number=NUMBER) / NUMBER * 1e9)
    return best


def main() -> None:
    paths = [("C", True), ("Python", False)] if _values.BUILT else [("Python", False)]
    for path, native in paths:
        # Stores and wrappers are chosen when metrics and decorators are made, so switching
        # here gives every qw_metrics object below the pure-Python fallback.
        _values.BUILT = native
        print(f"\n{path} path ({'C extension' if native else 'pure-Python fallback'})")
        measure(path)


def measure(path: str) -> None:
    prom_registry = CollectorRegistry()
    qw_registry = CollectorRegistry()
    prom = prometheus_client.Histogram(
        "bench_seconds", "bench", ["stage"], buckets=BUCKETS, registry=prom_registry
    )
    lean = qw_metrics.Histogram("bench_seconds", "bench", ["stage"], buckets=BUCKETS,
                                registry=CollectorRegistry())  # fmt: skip

    def noop() -> None:
        pass

    prom_decorated = prom.labels(stage="features").time()(noop)
    qw_decorated = qw_metrics.timed(stage="features", registry=qw_registry)(noop)
    counter = prometheus_client.Counter("bench", "bench", ["type"], registry=prom_registry)
    counter_child = counter.labels(type="match")

    def hand_counted() -> None:
        noop()
        counter_child.inc()

    qw_counted = qw_metrics.counted(counter, type="match", registry=qw_registry)(noop)
    prom_child = prom.labels(stage="features")
    lean_child = lean.labels(stage="features")

    # Per-call labels, as the feed parser counts every frame by its type.
    def hand_labelled() -> None:
        noop()
        counter.labels(type="match").inc()

    lean_counter = qw_metrics.Counter("bench", "bench", ["type"], registry=qw_registry)
    qw_labelled = qw_metrics.counted(counter, labels_from_result=lambda r: {"type": "match"},
                                     registry=qw_registry)(noop)  # fmt: skip
    lean_labelled = qw_metrics.counted(lean_counter, labels_from_result=lambda r: {"type": "match"},
                                       registry=qw_registry)(noop)  # fmt: skip
    lean_labelled_str = qw_metrics.counted(lean_counter, labels_from_result=lambda r: "match",
                                           registry=qw_registry)(noop)  # fmt: skip
    lean_counter_child = lean_counter.labels(type="match")

    def value(result: object) -> float:
        return 0.001

    def hand_recorded() -> None:
        prom_child.observe(value(noop()))

    qw_recorded = qw_metrics.recorded(lean, value=value, stage="features")(noop)
    ns: dict[str, object] = {
        "noop": noop,
        "prom_decorated": prom_decorated,
        "qw_decorated": qw_decorated,
        "prom": prom,
        "timed": qw_metrics.timed,
        "qw_registry": qw_registry,
        "prom_child": prom_child,
        "lean_child": lean_child,
        "hand_counted": hand_counted,
        "qw_counted": qw_counted,
        "hand_labelled": hand_labelled,
        "qw_labelled": qw_labelled,
        "lean_labelled": lean_labelled,
        "lean_labelled_str": lean_labelled_str,
        "counter_child": counter_child,
        "lean_counter_child": lean_counter_child,
        "hand_recorded": hand_recorded,
        "qw_recorded": qw_recorded,
    }
    rows = [
        ("decorator", "noop()", "prom_decorated()", "qw_decorated()"),
        (
            "with block",
            "pass",
            "with prom.labels(stage='features').time(): pass",
            "with timed(stage='features', registry=qw_registry): pass",
        ),
        ("observe()", "pass", "prom_child.observe(0.001)", "lean_child.observe(0.001)"),
        # No prometheus_client decorator counts calls: the peer is a hand-written inc() call.
        ("counted", "noop()", "hand_counted()", "qw_counted()"),
        # counted(labels_from_result=...) into a prometheus_client Counter, into the lean
        # Counter, and into the lean Counter with the label value returned as a plain string.
        ("counted lfr", "noop()", "hand_labelled()", "qw_labelled()"),
        ("lean lfr", "noop()", "hand_labelled()", "lean_labelled()"),
        ("lean lfr str", "noop()", "hand_labelled()", "lean_labelled_str()"),
        ("Counter.inc", "pass", "counter_child.inc()", "lean_counter_child.inc()"),
        # recorded(value=...) into a lean histogram, against observing by hand.
        ("recorded", "noop()", "hand_recorded()", "qw_recorded()"),
    ]
    print(f"{'case':<12} {'baseline':>9} {'prom raw':>9} {'qw raw':>9} {'prom net':>9} "
          f"{'qw net':>9} {'net ratio':>9} {'raw ratio':>9}")  # fmt: skip
    ratios = {}
    for name, bare_stmt, prom_stmt, qw_stmt in rows:
        baseline, prom_ns, qw_ns = best_ns([bare_stmt, prom_stmt, qw_stmt], ns)
        prom_net = prom_ns - baseline
        qw_net = qw_ns - baseline
        ratios[name] = qw_net / prom_net
        print(
            f"{name:<12} {baseline:>9.0f} {prom_ns:>9.0f} {qw_ns:>9.0f} {prom_net:>9.0f} "
            f"{qw_net:>9.0f} {qw_net / prom_net:>9.2f} {qw_ns / prom_ns:>9.2f}"
        )
    target = TARGETS[path]
    verdict = "met" if ratios["decorator"] <= target else "NOT met"
    print(
        "ns per call; net = raw - baseline (bare no-op call / empty body); "
        f"target for the timed decorator on the {path} path: net ratio <= {target}: {verdict}"
    )


if __name__ == "__main__":
    main()
