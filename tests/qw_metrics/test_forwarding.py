"""Decorated functions take exactly the arguments the original takes, and behave the same, on
every wrapper qw_metrics._wrappers picks (the C ObservedCall and the plain closures)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import pytest
import qw_metrics
from prometheus_client import CollectorRegistry, Gauge
from qw_metrics import Counter, counted, recorded, timed


def plain(a, b, c=3):  # type: ignore[no-untyped-def]
    return ("plain", a, b, c)


def shared(item, into=[]):  # type: ignore[no-untyped-def]  # noqa: B006  # the default's identity
    into.append(item)
    return into


def positional_only(a, b=2, /, c=3, *, d, e=5):  # type: ignore[no-untyped-def]
    return ("positional_only", a, b, c, d, e)


def variadic(a, *rest, key=None, **extra):  # type: ignore[no-untyped-def]
    return ("variadic", a, rest, key, extra)


def keywords_only(*, x, y=1):  # type: ignore[no-untyped-def]
    return ("keywords_only", x, y)


def clashing(_qw_func, result, start, func, labels):  # type: ignore[no-untyped-def]
    # Names the wrappers use: `_qw_*` ones make the wrapper fall back to *args, **kwargs.
    return ("clashing", _qw_func, result, start, func, labels)


def shadowing(Exception, AttributeError):  # type: ignore[no-untyped-def]
    # Builtins the wrappers use: such a function gets the *args, **kwargs wrapper.
    return ("shadowing", Exception, AttributeError)


def named_like_wrapper_locals(result, start, func, labels, amount):  # type: ignore[no-untyped-def]
    return ("named", result, start, func, labels, amount)


CALLS: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    (plain, (1, 2), {}),
    (plain, (1,), {"b": 2, "c": 4}),
    (plain, (), {"a": 1, "b": 2}),
    (plain, (1,), {}),  # missing b: the same TypeError
    (plain, (1, 2, 3, 4), {}),  # too many
    (plain, (1, 2), {"d": 1}),  # unknown keyword
    (positional_only, (1,), {"d": 4}),
    (positional_only, (1, 2, 3), {"d": 4, "e": 6}),
    (positional_only, (), {"a": 1, "d": 4}),  # a is positional-only: TypeError
    (positional_only, (1,), {}),  # d missing
    (variadic, (1, 2, 3), {"key": "k", "z": 9}),
    (variadic, (), {"a": 1}),
    (keywords_only, (), {"x": 1}),
    (keywords_only, (1,), {}),
    (clashing, (1, 2, 3, 4, 5), {}),
    (shadowing, (1, 2), {}),
    (named_like_wrapper_locals, (1, 2, 3, 4, 5), {}),
    (named_like_wrapper_locals, (), {"result": 1, "start": 2, "func": 3, "labels": 4, "amount": 5}),
    (len, ("abc",), {}),  # a builtin: no Python signature to copy
    (functools.partial(plain, 1), (2,), {}),
]


def decorators(registry: CollectorRegistry) -> list[Callable[[Callable[..., Any]], Any]]:
    calls = Counter("calls", "c", ["kind"], registry=registry)
    lean = qw_metrics.Histogram("lean", "l", registry=registry)
    gauge = Gauge("gauge", "g", registry=registry)
    return [
        timed(stage="s", registry=registry),
        timed(lean),
        counted(calls, kind="x", registry=registry),
        counted(calls, amount=lambda r: 2, kind="x", registry=registry),
        counted(calls, labels_from_result=lambda r: "y", registry=registry),
        counted(calls, amount=lambda r: 1, labels_from_result=lambda r: "z", registry=registry),
        recorded(lean, value=lambda r: 0.5, registry=registry),
        recorded(gauge, value=lambda r: 1.0, registry=registry),
    ]


def outcome(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    try:
        return func(*args, **kwargs)
    except TypeError as exc:
        # The wrapper carries the function's name, so even the message is the same.
        return ("TypeError", str(exc))


@pytest.mark.parametrize(("func", "args", "kwargs"), CALLS)
def test_wrappers_take_and_pass_arguments_exactly_as_the_function(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    registry = CollectorRegistry()
    expected = outcome(func, args, kwargs)
    for decorate in decorators(registry):
        wrapped = decorate(func)
        assert outcome(wrapped, args, kwargs) == expected
        if inspect.isfunction(func):
            assert inspect.signature(wrapped) == inspect.signature(func)


def test_defaults_are_the_same_objects() -> None:
    registry = CollectorRegistry()
    wrapped = timed(stage="s", registry=registry)(shared)
    first = wrapped(1)
    assert wrapped(2) is first is shared(3)
    assert first == [1, 2, 3]


def test_exceptions_pass_through_unchanged_and_are_timed() -> None:
    registry = CollectorRegistry()
    failure = RuntimeError("boom")

    @timed(stage="s", registry=registry)
    def fail(reason: str, *, times: int = 1) -> None:
        raise failure

    with pytest.raises(RuntimeError) as raised:
        fail("x", times=2)
    assert raised.value is failure
    count = registry.get_sample_value("pipeline_callback_duration_seconds_count", {"stage": "s"})
    assert count == 1


def test_recorded_and_counted_see_every_call() -> None:
    registry = CollectorRegistry()
    calls = Counter("calls", "c", ["kind"], registry=registry)
    sizes = qw_metrics.Histogram("sizes", "s", buckets=(1, 10), registry=registry)

    class Book:
        @counted(calls, labels_from_result=lambda r: "even" if r % 2 == 0 else "odd")
        @recorded(sizes, value=lambda r: r)
        def depth(self, levels: int, extra: int = 0) -> int:
            return levels + extra

    book = Book()
    assert [book.depth(n) for n in range(5)] == [0, 1, 2, 3, 4]
    assert book.depth(levels=5, extra=10) == 15
    get = registry.get_sample_value
    assert get("calls_total", {"kind": "even"}) == 3
    assert get("calls_total", {"kind": "odd"}) == 3
    assert get("sizes_count") == 6
    assert get("sizes_bucket", {"le": "1.0"}) == 2
    assert get("sizes_sum") == 25
