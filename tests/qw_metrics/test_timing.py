"""timed: decorator and context manager, sync and async, stage histogram configuration."""

from __future__ import annotations

import asyncio
import inspect
import time

import prometheus_client
import pytest
import qw_metrics
from prometheus_client import CollectorRegistry, Counter, Gauge, Summary
from qw_metrics import StageConfigError, configure_stages, timed

pytestmark = pytest.mark.usefixtures("implementation")

STAGE = "pipeline_callback_duration_seconds"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def stage_count(registry: CollectorRegistry, stage: str) -> float | None:
    return registry.get_sample_value(f"{STAGE}_count", {"stage": stage})


def stage_sum(registry: CollectorRegistry, stage: str) -> float:
    value = registry.get_sample_value(f"{STAGE}_sum", {"stage": stage})
    assert value is not None
    return value


def test_decorator_records_seconds_into_the_stage_histogram(registry: CollectorRegistry) -> None:
    @timed(stage="features", registry=registry)
    def compute(x: int) -> int:
        time.sleep(0.01)
        return x * 2

    assert compute(21) == 42
    assert compute(1) == 2
    assert stage_count(registry, "features") == 2
    assert 0.02 <= stage_sum(registry, "features") < 1.0
    assert registry.get_sample_value(f"{STAGE}_bucket", {"stage": "features", "le": "+Inf"}) == 2


def test_context_manager_records_each_block(registry: CollectorRegistry) -> None:
    for _ in range(3):
        with timed(stage="labeler", registry=registry):
            time.sleep(0.005)
    assert stage_count(registry, "labeler") == 3
    assert stage_sum(registry, "labeler") >= 0.015


def test_nested_and_shared_context_managers(registry: CollectorRegistry) -> None:
    outer = timed(stage="outer", registry=registry)
    with outer, timed(stage="inner", registry=registry):
        time.sleep(0.01)
    assert stage_count(registry, "outer") == 1
    assert stage_count(registry, "inner") == 1


def test_async_def_is_timed_over_the_awaited_execution(registry: CollectorRegistry) -> None:
    prom = prometheus_client.Histogram("prom_seconds", "p", registry=registry)

    @timed(stage="io", registry=registry)
    async def fetch() -> str:
        await asyncio.sleep(0.05)
        return "done"

    @prom.time()
    async def fetch_prom() -> None:
        await asyncio.sleep(0.05)

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch()) == "done"
    asyncio.run(fetch_prom())
    assert stage_count(registry, "io") == 1
    assert stage_sum(registry, "io") >= 0.05
    # prometheus_client's .time() only times creating the coroutine.
    prom_sum = registry.get_sample_value("prom_seconds_sum")
    assert prom_sum is not None
    assert prom_sum < 0.05


def test_async_with_block(registry: CollectorRegistry) -> None:
    async def run() -> None:
        async with timed(stage="async_block", registry=registry):
            await asyncio.sleep(0.02)

    asyncio.run(run())
    assert stage_sum(registry, "async_block") >= 0.02


def test_methods_static_and_class_methods(registry: CollectorRegistry) -> None:
    class Model:
        factor = 3

        def __init__(self) -> None:
            self.calls = 0

        @timed(stage="method", registry=registry)
        def predict(self, x: int) -> int:
            self.calls += 1
            return x * self.factor

        @timed(stage="static_outer", registry=registry)
        @staticmethod
        def static_outer(x: int) -> int:
            return x + 1

        @staticmethod
        @timed(stage="static_inner", registry=registry)
        def static_inner(x: int) -> int:
            return x + 2

        @timed(stage="class_outer", registry=registry)
        @classmethod
        def class_outer(cls, x: int) -> int:
            return x * cls.factor

        @classmethod
        @timed(stage="class_inner", registry=registry)
        def class_inner(cls, x: int) -> int:
            return x - cls.factor

    model = Model()
    assert model.predict(2) == 6
    assert model.calls == 1
    assert Model.static_outer(1) == 2
    assert model.static_outer(1) == 2
    assert Model.static_inner(1) == 3
    assert Model.class_outer(2) == 6
    assert model.class_inner(5) == 2
    assert stage_count(registry, "method") == 1
    assert stage_count(registry, "static_outer") == 2
    for stage in ("static_inner", "class_outer", "class_inner"):
        assert stage_count(registry, stage) == 1


def test_metadata_is_kept(registry: CollectorRegistry) -> None:
    def original(a: int, b: str = "x") -> str:
        """Docs."""
        return b * a

    wrapped = timed(stage="meta", registry=registry)(original)
    assert wrapped.__name__ == "original"
    assert wrapped.__doc__ == "Docs."
    assert wrapped.__wrapped__ is original  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert not inspect.iscoroutinefunction(wrapped)


def test_generators_are_refused_at_decoration(registry: CollectorRegistry) -> None:
    def gen():  # type: ignore[no-untyped-def]
        yield 1

    async def agen():  # type: ignore[no-untyped-def]
        yield 1

    with pytest.raises(TypeError, match="generator"):
        timed(stage="gen", registry=registry)(gen)
    with pytest.raises(TypeError, match="generator"):
        timed(stage="gen", registry=registry)(agen)


def test_exceptions_are_timed_reraised_unchanged_and_counted(registry: CollectorRegistry) -> None:
    errors = Counter("stage_errors", "e", ["stage", "exception"], registry=registry)
    boom = ValueError("boom")

    @timed(stage="risky", count_exceptions=errors, registry=registry)
    def risky(fail: bool) -> str:
        if fail:
            raise boom
        return "ok"

    with pytest.raises(ValueError, match="boom") as caught:
        risky(True)
    assert caught.value is boom
    assert risky(False) == "ok"
    assert stage_count(registry, "risky") == 2
    sample = registry.get_sample_value
    assert sample("stage_errors_total", {"stage": "risky", "exception": "ValueError"}) == 1

    with pytest.raises(KeyError), timed(stage="block", count_exceptions=errors, registry=registry):
        raise KeyError("k")
    assert stage_count(registry, "block") == 1
    assert sample("stage_errors_total", {"stage": "block", "exception": "KeyError"}) == 1


def test_async_exceptions_are_timed_and_counted(registry: CollectorRegistry) -> None:
    errors = Counter("async_errors", "e", ["stage"], registry=registry)

    @timed(stage="async_risky", count_exceptions=errors, registry=registry)
    async def risky() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("x")

    with pytest.raises(RuntimeError, match="x"):
        asyncio.run(risky())
    assert stage_sum(registry, "async_risky") >= 0.01
    assert registry.get_sample_value("async_errors_total", {"stage": "async_risky"}) == 1


def test_records_into_given_prometheus_histogram_summary_and_lean_histogram(
    registry: CollectorRegistry,
) -> None:
    prom = prometheus_client.Histogram("flush_seconds", "f", ["table"], registry=registry)
    summary = Summary("predict_seconds", "p", registry=registry)
    lean = qw_metrics.Histogram("lean_seconds", "l", ["kind"], registry=registry)

    @timed(prom, table="trades", registry=registry)
    @timed(summary)
    @timed(lean, kind="a", registry=registry)
    def work() -> None:
        time.sleep(0.002)

    work()
    with timed(prom.labels(table="raw")):
        pass
    get = registry.get_sample_value
    assert get("flush_seconds_count", {"table": "trades"}) == 1
    assert get("flush_seconds_count", {"table": "raw"}) == 1
    assert get("predict_seconds_count") == 1
    assert get("lean_seconds_count", {"kind": "a"}) == 1
    assert get("lean_seconds_sum", {"kind": "a"}) >= 0.002


def test_static_labels_are_resolved_at_decoration(registry: CollectorRegistry) -> None:
    prom = prometheus_client.Histogram("resolved_seconds", "r", ["table"], registry=registry)
    timed(prom, table="features", registry=registry)(lambda: None)
    # The child exists (with a zero count) before any call.
    assert registry.get_sample_value("resolved_seconds_count", {"table": "features"}) == 0


def test_bad_arguments_fail_at_definition(registry: CollectorRegistry) -> None:
    prom = prometheus_client.Histogram("checked_seconds", "c", ["table"], registry=registry)
    with pytest.raises(ValueError, match=r"missing values for \['table'\]"):
        timed(prom, registry=registry)
    with pytest.raises(ValueError, match=r"unknown labels \['tabel'\]"):
        timed(prom, tabel="x", registry=registry)
    with pytest.raises(ValueError, match="unknown labels"):
        timed(stage="s", product="BTC", registry=registry)
    with pytest.raises(TypeError, match="Histogram or Summary"):
        timed(Gauge("g", "g", registry=registry))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a metric"):
        timed()
    with pytest.raises(TypeError, match="not both"):
        timed(prom, stage="x")
    errors = Counter("errs", "e", ["product"], registry=registry)
    with pytest.raises(ValueError, match="product"):
        timed(stage="s", count_exceptions=errors, registry=registry)
    with pytest.raises(TypeError, match="decorates functions"):
        timed(stage="s", registry=registry)(42)  # type: ignore[call-overload]


def test_labels_from_args(registry: CollectorRegistry) -> None:
    flush_seconds = qw_metrics.Histogram("flush_seconds", "f", ["table", "mode"], registry=registry)

    class Writer:
        def __init__(self, table: str) -> None:
            self.table = table

        @timed(
            flush_seconds,
            mode="batch",
            labels_from_args=lambda self, *a, **k: {"table": self.table},
            registry=registry,
        )
        def flush(self, rows: int) -> int:
            return rows

    a, b = Writer("trades"), Writer("features")
    assert a.flush(1) == 1
    a.flush(2)
    b.flush(3)
    get = registry.get_sample_value
    assert get("flush_seconds_count", {"table": "trades", "mode": "batch"}) == 2
    assert get("flush_seconds_count", {"table": "features", "mode": "batch"}) == 1
    with pytest.raises(TypeError, match="labels_from_args"):  # noqa: SIM117
        with timed(flush_seconds, mode="x", labels_from_args=dict, registry=registry):
            pass


def test_instrumentation_failures_never_reach_the_function(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @timed(stage="s", labels_from_args=lambda x: {"stage": 1 / x}, registry=registry)
    def invert(x: int) -> int:
        return x

    assert invert(0) == 0  # labels_from_args raised ZeroDivisionError: call still runs
    assert invert(0) == 0
    assert invert(2) == 2
    assert registry.get_sample_value(f"{STAGE}_count", {"stage": "0.5"}) == 1
    assert sum("could not label" in r.getMessage() for r in caplog.records) == 1

    @timed(stage="s", labels_from_args=lambda: {"nope": "x"}, registry=registry)
    def unknown_label() -> str:
        return "ran"

    assert unknown_label() == "ran"


def test_configure_stages(registry: CollectorRegistry) -> None:
    configure_stages(registry, name="stage_seconds", documentation="Stages.", buckets=(0.1, 1.0))
    configure_stages(registry, name="stage_seconds", documentation="Stages.", buckets=(0.1, 1.0))
    with pytest.raises(StageConfigError, match="already configured"):
        configure_stages(registry, name="other_seconds")
    with timed(stage="a", registry=registry):
        pass
    assert registry.get_sample_value("stage_seconds_bucket", {"stage": "a", "le": "0.1"}) == 1
    assert registry.get_sample_value("stage_seconds_bucket", {"stage": "a", "le": "1.0"}) == 1
    assert "# HELP stage_seconds Stages." in prometheus_client.generate_latest(registry).decode()


def test_configure_stages_after_use_must_match(registry: CollectorRegistry) -> None:
    with timed(stage="a", registry=registry):
        pass
    configure_stages(registry)  # the defaults, as in use: fine
    with pytest.raises(StageConfigError, match="already in use"):
        configure_stages(registry, buckets=(1.0, 2.0))
    with pytest.raises(qw_metrics.InvalidNameError):
        configure_stages(CollectorRegistry(), name="bad name")


def test_default_registry(implementation: str) -> None:
    stage = f"qw_test_default_registry_{implementation}"

    @timed(stage=stage)
    def f() -> None:
        pass

    f()
    value = prometheus_client.REGISTRY.get_sample_value(f"{STAGE}_count", {"stage": stage})
    assert value == 1


def test_disabled_is_a_pass_through(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QW_METRICS_DISABLED", "1")

    def f() -> int:
        return 1

    assert timed(stage="off", registry=registry)(f) is f
    with timed(stage="off_block", registry=registry):
        pass
    assert qw_metrics.counted(Counter("c", "c", registry=registry))(f) is f
    buffer: list[int] = []  # not even weakly referenceable: disabled tracking does not care
    assert qw_metrics.track_buffer("off", capacity=1, registry=registry)(buffer) is buffer
    assert stage_count(registry, "off") is None
    assert stage_count(registry, "off_block") is None
    # Read when decorating: the same timed(...) decorates normally once re-enabled.
    monkeypatch.delenv("QW_METRICS_DISABLED")
    timer = timed(stage="off", registry=registry)
    timer(f)()
    assert stage_count(registry, "off") == 1


def test_concurrent_timed_calls_and_blocks_lose_nothing(registry: CollectorRegistry) -> None:
    import threading

    @timed(stage="threads", registry=registry)
    def noop() -> None:
        pass

    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(10_000):
            noop()
            with timed(stage="threads_block", registry=registry):
                pass

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stage_count(registry, "threads") == 80_000
    assert stage_count(registry, "threads_block") == 80_000


def test_stage_buckets_are_set_with_configure_stages(registry: CollectorRegistry) -> None:
    with pytest.raises(TypeError, match=r"configure_stages\(registry, buckets="):
        timed(stage="x", buckets=(0.1, 1.0), registry=registry)
