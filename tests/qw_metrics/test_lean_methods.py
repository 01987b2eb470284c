"""The prometheus_client methods the lean types offer too: .time(), count_exceptions(),
remove() and clear(), each checked against prometheus_client doing the same."""

from __future__ import annotations

import asyncio
import time

import prometheus_client
import pytest
import qw_metrics
from prometheus_client import CollectorRegistry

pytestmark = pytest.mark.usefixtures("implementation")


def test_time_as_decorator_and_block_like_prometheus_client() -> None:
    registry = CollectorRegistry()
    lean = qw_metrics.Histogram("work_seconds", "w", ["kind"], registry=registry)
    plain = qw_metrics.Histogram("plain_seconds", "p", registry=registry)

    @lean.labels("sync").time()
    def work() -> str:
        time.sleep(0.002)
        return "done"

    @plain.time()
    async def io() -> None:
        await asyncio.sleep(0.002)

    assert work() == "done"
    assert work.__name__ == "work"
    asyncio.run(io())
    with lean.labels("block").time():
        pass
    get = registry.get_sample_value
    assert get("work_seconds_count", {"kind": "sync"}) == 1
    assert (get("work_seconds_sum", {"kind": "sync"}) or 0) >= 0.002
    assert get("work_seconds_count", {"kind": "block"}) == 1
    assert get("plain_seconds_count") == 1
    assert (get("plain_seconds_sum") or 0) >= 0.002


def test_count_exceptions_counts_only_the_given_type_and_reraises() -> None:
    registry = CollectorRegistry()
    failures = qw_metrics.Counter("failures", "f", ["op"], registry=registry)
    plain = qw_metrics.Counter("errors", "e", registry=registry)

    @failures.labels("parse").count_exceptions(ValueError)
    def parse(text: str) -> int:
        return int(text)

    assert parse("3") == 3
    with pytest.raises(ValueError, match="invalid literal"):
        parse("x")
    with pytest.raises(KeyError), plain.count_exceptions():
        raise KeyError("k")
    with pytest.raises(SystemExit), plain.count_exceptions():  # not an Exception: not counted
        raise SystemExit(1)
    get = registry.get_sample_value
    assert get("failures_total", {"op": "parse"}) == 1
    assert get("errors_total") == 1


def test_remove_and_clear_like_prometheus_client_and_give_the_budget_back() -> None:
    lean_registry, prom_registry = CollectorRegistry(), CollectorRegistry()
    qw_metrics.set_series_budget(2, registry=lean_registry)
    lean = qw_metrics.Counter("hits", "h", ["page"], registry=lean_registry)
    prom = prometheus_client.Counter("hits", "h", ["page"], registry=prom_registry)
    for metric in (lean, prom):
        metric.labels("a").inc()
        metric.labels("b").inc(2)
        metric.remove("a")
        metric.remove("never")  # an unknown label value is no error
    for registry in (lean_registry, prom_registry):
        assert registry.get_sample_value("hits_total", {"page": "a"}) is None
        assert registry.get_sample_value("hits_total", {"page": "b"}) == 2
    lean.labels("c").inc()  # the removed series' budget was given back
    assert lean_registry.get_sample_value("hits_total", {"page": "c"}) == 1
    lean.clear()
    assert lean.children() == []
    lean.labels("d").inc()
    lean.labels("e").inc()
    assert lean_registry.get_sample_value("hits_total", {"page": "e"}) == 1
    assert lean_registry.get_sample_value("qw_metrics_series_dropped_total") == 0
