"""counted, recorded and RollingRate."""

from __future__ import annotations

import asyncio
import time

import prometheus_client
import pytest
import qw_metrics
from prometheus_client import CollectorRegistry, Counter, Gauge, Summary
from qw_metrics import RollingRate, counted, recorded

pytestmark = pytest.mark.usefixtures("implementation")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_counted_increments_after_each_return(registry: CollectorRegistry) -> None:
    parsed = Counter("parsed", "p", ["type"], registry=registry)

    @counted(parsed, type="match")
    def parse(frame: str) -> str:
        return frame.upper()

    assert parse("a") == "A"
    parse("b")
    assert registry.get_sample_value("parsed_total", {"type": "match"}) == 2


def test_counted_amount_from_result_and_labels_from_result(registry: CollectorRegistry) -> None:
    rows = Counter("rows", "r", ["table"], registry=registry)

    @counted(rows, amount=len, labels_from_result=lambda r: {"table": r[0]} if r else None)
    def produce(*items: str) -> list[str]:
        return list(items)

    produce("trades", "x", "y")
    produce("features")
    produce()  # labels_from_result -> None: not counted
    get = registry.get_sample_value
    assert get("rows_total", {"table": "trades"}) == 3
    assert get("rows_total", {"table": "features"}) == 1


def test_counted_async_and_exceptions_not_counted(registry: CollectorRegistry) -> None:
    done = Counter("done", "d", registry=registry)

    @counted(done, amount=lambda n: n)
    async def work(n: int) -> int:
        await asyncio.sleep(0)
        if n < 0:
            raise ValueError("negative")
        return n

    assert asyncio.run(work(5)) == 5
    with pytest.raises(ValueError, match="negative"):
        asyncio.run(work(-1))
    assert registry.get_sample_value("done_total") == 5


def test_counted_into_a_rolling_rate_and_a_gauge(registry: CollectorRegistry) -> None:
    now = [100.0]
    rate = RollingRate(window=10.0, clock=lambda: now[0])
    level = Gauge("level", "l", registry=registry)

    @counted(rate)
    @counted(level, amount=2)
    def update() -> None:
        pass

    for _ in range(20):
        now[0] += 0.5
        update()
    assert rate.rate() == pytest.approx(2.0)
    assert registry.get_sample_value("level") == 40


def test_counted_rejects_bad_targets_and_labels(registry: CollectorRegistry) -> None:
    histogram = prometheus_client.Histogram("h", "h", registry=registry)
    with pytest.raises(TypeError, match="Counter, Gauge or RollingRate"):
        counted(histogram)  # type: ignore[arg-type]
    labelled = Counter("l", "l", ["type"], registry=registry)
    with pytest.raises(ValueError, match="missing values"):
        counted(labelled)(lambda: None)
    with pytest.raises(TypeError, match="generator"):
        counted(Counter("g", "g", registry=registry))(lambda: (yield))


def test_counting_failures_never_reach_the_function(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    total = Counter("neg", "n", registry=registry)

    @counted(total, amount=lambda r: r)
    def value(x: float) -> float:
        return x

    assert value(-1.0) == -1.0  # a Counter refuses negative increments; the call is unharmed
    assert value(2.0) == 2.0
    assert registry.get_sample_value("neg_total") == 2
    assert any("could not record" in r.getMessage() for r in caplog.records)


def test_recorded_sets_gauges_and_observes_histograms(registry: CollectorRegistry) -> None:
    depth = Gauge("depth", "d", ["side"], registry=registry)
    sizes = qw_metrics.Histogram("sizes", "s", buckets=(1, 10), registry=registry)
    spread = Summary("spread", "s", registry=registry)

    @recorded(depth, value=len, side="bid")
    @recorded(sizes, value=lambda r: len(r) if r else None)
    @recorded(spread, value=lambda r: 0.5)
    def levels(n: int) -> list[int]:
        return list(range(n))

    levels(3)
    levels(0)  # sizes skipped (None)
    levels(7)
    get = registry.get_sample_value
    assert get("depth", {"side": "bid"}) == 7
    assert get("sizes_count") == 2
    assert get("sizes_bucket", {"le": "1.0"}) == 0
    assert get("sizes_bucket", {"le": "10.0"}) == 2
    assert get("spread_count") == 3


def test_recorded_seconds_since_observes_the_age_of_a_returned_timestamp(
    registry: CollectorRegistry,
) -> None:
    ages = qw_metrics.Histogram("age_seconds", "Age.", buckets=(0.1, 1.0, 10.0), registry=registry)

    @recorded(ages, value=qw_metrics.seconds_since)
    def arrived(at: float | None) -> float | None:
        return at

    before = time.time()
    assert arrived(before - 5.0) == before - 5.0
    assert arrived(None) is None  # nothing observed
    after = time.time()
    counts, total = ages.child().snapshot()
    assert counts == [0, 0, 1, 0]
    assert 5.0 <= total <= 5.0 + (after - before)
    assert qw_metrics.seconds_since(None) is None
    assert 2.0 <= qw_metrics.seconds_since(time.time() - 2.0) < 3.0  # type: ignore[operator]


def test_recorded_seconds_since_reports_a_non_timestamp_and_returns_the_result(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    ages = qw_metrics.Histogram("age_seconds", "Age.", registry=registry)

    @recorded(ages, value=qw_metrics.seconds_since)
    def arrived(at: object) -> object:
        return at

    assert arrived("yesterday") == "yesterday"
    assert ages.child().snapshot()[0] == [0] * len(ages.bounds)
    assert sum("could not record" in r.getMessage() for r in caplog.records) == 1


def test_recorded_async_with_labels_from_result(registry: CollectorRegistry) -> None:
    last = Gauge("last_trade_id", "l", ["product"], registry=registry)

    @recorded(last, value=lambda t: t[1], labels_from_result=lambda t: {"product": t[0]})
    async def trade(product: str, trade_id: int) -> tuple[str, int]:
        return product, trade_id

    asyncio.run(trade("BTC-USD", 7))
    asyncio.run(trade("ETH-USD", 9))
    assert registry.get_sample_value("last_trade_id", {"product": "BTC-USD"}) == 7
    assert registry.get_sample_value("last_trade_id", {"product": "ETH-USD"}) == 9
    with pytest.raises(TypeError, match="Gauge or observes"):
        recorded(Counter("c", "c", registry=registry), value=len)  # type: ignore[arg-type]


def test_rolling_rate_window() -> None:
    now = [0.0]
    rate = RollingRate(window=10.0, clock=lambda: now[0])
    assert rate.rate() == 0.0
    for _ in range(100):  # 10 events per second for 10 seconds
        now[0] += 0.1
        rate.inc()
    assert rate.rate() == pytest.approx(10.0, rel=0.02)
    now[0] += 5.0  # half the window without events
    assert rate.rate() == pytest.approx(5.0, rel=0.1)
    now[0] += 10.0
    assert rate.rate() == 0.0
    rate.inc(30)
    now[0] += 1.0
    assert rate.rate() == pytest.approx(3.0, rel=0.06)
    with pytest.raises(ValueError, match="window"):
        RollingRate(window=0)


def test_counted_constant_amount_on_async_and_static_methods(registry: CollectorRegistry) -> None:
    ticks = Counter("ticks", "t", ["kind"], registry=registry)

    class Source:
        @counted(ticks, kind="async", amount=3)
        async def poll(self) -> str:
            return "polled"

        @counted(ticks, kind="static")
        @staticmethod
        def ping() -> str:
            return "pong"

    assert asyncio.run(Source().poll()) == "polled"
    assert Source.ping() == "pong"
    assert registry.get_sample_value("ticks_total", {"kind": "async"}) == 3
    assert registry.get_sample_value("ticks_total", {"kind": "static"}) == 1


def test_rolling_rate_divides_by_the_whole_window_from_the_start() -> None:
    now = [0.0]
    rate = RollingRate(window=10.0, clock=lambda: now[0])
    for _ in range(20):  # 20 events in 0.4 s: 2 per second over the window, not 50
        now[0] += 0.02
        rate.inc()
    assert rate.rate() == pytest.approx(2.0)
