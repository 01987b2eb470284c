"""track_buffer: size and capacity gauges read at collect time, weakly held."""

from __future__ import annotations

import gc
from collections import deque

import pytest
from prometheus_client import CollectorRegistry
from qw_metrics import track_buffer


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def gauges(registry: CollectorRegistry, name: str) -> tuple[float | None, float | None]:
    return (
        registry.get_sample_value(f"{name}_buffer_size"),
        registry.get_sample_value(f"{name}_buffer_capacity"),
    )


def test_tracks_an_object_with_len_read_at_collect_time(registry: CollectorRegistry) -> None:
    trades: deque[int] = deque(maxlen=1000)
    assert track_buffer("trade", capacity=1000, registry=registry)(trades) is trades
    assert gauges(registry, "trade") == (0, 1000)
    trades.extend(range(5))  # the hot path does nothing: the size is read when collected
    assert gauges(registry, "trade") == (5, 1000)


def test_capacity_from_an_attribute(registry: CollectorRegistry) -> None:
    samples: deque[int] = deque(range(3), maxlen=50)
    track_buffer("samples", capacity="maxlen", registry=registry)(samples)
    assert gauges(registry, "samples") == (3, 50)


def test_does_not_keep_the_object_alive(registry: CollectorRegistry) -> None:
    buffer: deque[int] = deque([1, 2, 3])
    track_buffer("gone", capacity=10, registry=registry)(buffer)
    assert gauges(registry, "gone") == (3, 10)
    del buffer
    gc.collect()
    assert gauges(registry, "gone") == (0, 0)


def test_class_decoration_covers_every_instance_and_sums(registry: CollectorRegistry) -> None:
    @track_buffer("labeler", capacity="capacity", attr="_samples", registry=registry)
    class Labeler:
        def __init__(self, capacity: int) -> None:
            self.capacity = capacity
            self._samples: list[int] = []

        def add(self, x: int) -> None:
            self._samples.append(x)

    assert gauges(registry, "labeler") == (0, 0)
    first, second = Labeler(100), Labeler(50)
    first.add(1)
    second.add(2)
    second.add(3)
    assert Labeler.__name__ == "Labeler"
    assert Labeler.__init__.__name__ == "__init__"
    assert gauges(registry, "labeler") == (3, 150)
    del first
    gc.collect()
    assert gauges(registry, "labeler") == (2, 50)


def test_class_with_len_and_subclasses(registry: CollectorRegistry) -> None:
    @track_buffer("queue", capacity=10, registry=registry)
    class Queue:
        def __init__(self, items: list[int]) -> None:
            self.items = items

        def __len__(self) -> int:
            return len(self.items)

    class Bigger(Queue):
        def __init__(self) -> None:
            super().__init__([1, 2, 3, 4])

    keep = [Queue([1]), Bigger()]
    assert gauges(registry, "queue") == (5, 20)
    assert len(keep) == 2


def test_errors_at_definition(registry: CollectorRegistry) -> None:
    with pytest.raises(TypeError, match="weakly"):
        track_buffer("plain", capacity=3, registry=registry)([1, 2])
    with pytest.raises(AttributeError):
        track_buffer("missing", capacity=3, attr="nope", registry=registry)(deque())
    with pytest.raises(TypeError, match="capacity"):
        track_buffer("bad", capacity=None, registry=registry)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        track_buffer("bad", capacity=-1, registry=registry)
    with pytest.raises(ValueError, match="invalid metric name"):
        track_buffer("bad name", capacity=1, registry=registry)

    class Slotted:
        __slots__ = ("items",)

    with pytest.raises(TypeError, match="__weakref__"):
        track_buffer("slotted", capacity=1, attr="items", registry=registry)(Slotted)

    track_buffer("same", capacity=1, registry=registry)
    track_buffer("same", capacity=1, registry=registry)  # the same settings: shared
    with pytest.raises(ValueError, match="already tracked"):
        track_buffer("same", capacity=2, registry=registry)


def test_instance_that_cannot_be_measured_is_skipped(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @track_buffer("broken", capacity="limit", registry=registry)
    class Broken:
        def __init__(self, limit: object) -> None:
            self.limit = limit

        def __len__(self) -> int:
            return 1

    keep = [Broken(4), Broken("not a number")]
    assert gauges(registry, "broken") == (1, 4)
    assert any("cannot measure" in r.getMessage() for r in caplog.records)
    assert len(keep) == 2


def test_queues_are_measured_by_qsize_and_their_maxsize(registry: CollectorRegistry) -> None:
    import asyncio
    import queue

    jobs: queue.Queue[int] = queue.Queue(maxsize=8)
    track_buffer("jobs", capacity="maxsize", registry=registry)(jobs)
    jobs.put(1)
    jobs.put(2)
    assert gauges(registry, "jobs") == (2.0, 8.0)

    class Worker:
        def __init__(self) -> None:
            self.inbox: asyncio.Queue[int] = asyncio.Queue(maxsize=5)

    track_buffer("inbox", capacity="maxsize", attr="inbox", registry=registry)(Worker)
    worker = Worker()  # capacity found on the queue, not on the worker
    worker.inbox.put_nowait(7)
    assert gauges(registry, "inbox") == (1.0, 5.0)
    with pytest.raises(TypeError, match="maxlen None"):
        track_buffer("unbounded", capacity="maxlen", registry=registry)(deque())
