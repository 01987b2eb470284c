"""qw_metrics._speedups: the C Counts match the pure-Python shards value for value, and the C
ObservedCall behaves as the function it wraps (arguments, results, errors, binding, metadata,
references)."""

from __future__ import annotations

import functools
import gc
import inspect
import math
import pickle
import sys
import time
import weakref
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from qw_metrics import _speedups
from qw_metrics._values import ShardedCounts
from qw_metrics.lean import prepare_buckets

pytestmark = pytest.mark.speedups

BOUNDS = prepare_buckets((0.001, 0.01, 0.1, 1.0))


def timed_call(func: Any, counts: Any) -> Any:
    return functools.wraps(func)(_speedups.ObservedCall(func, counts))


def double(x: float, y: float = 0.0, *, z: float = 0.0) -> float:
    """Twice x, plus y and z."""
    return 2 * x + y + z


@given(
    values=st.lists(st.floats(allow_nan=True) | st.integers(-(10**15), 10**15), max_size=200),
    bounds=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=12, unique=True),
)
def test_counts_equal_the_pure_python_shards(values: list[float], bounds: list[float]) -> None:
    prepared = prepare_buckets(sorted(bounds))
    c, python = _speedups.Counts(prepared), ShardedCounts(prepared)
    for value in values:
        c.observe(value)
        python.observe(value)
    (c_counts, c_sum), (py_counts, py_sum) = c.snapshot(), python.snapshot()
    assert c_counts == py_counts
    assert sum(c_counts) == len(values)
    assert (math.isnan(c_sum) and math.isnan(py_sum)) or c_sum == py_sum


@pytest.mark.parametrize(
    ("bounds", "error"),
    [((1.0,), ValueError), ((math.inf,), ValueError), ((0.1, 1.0), ValueError),
     (("a", math.inf), TypeError), (3, TypeError)],
)  # fmt: skip
def test_counts_reject_bounds_without_a_finite_bound_and_inf(bounds: Any, error: type) -> None:
    with pytest.raises(error):
        _speedups.Counts(bounds)


def test_counts_observe_rejects_non_numbers_and_counts_nothing() -> None:
    counts = _speedups.Counts(BOUNDS)
    with pytest.raises(TypeError, match="str"):
        counts.observe("0.5")  # type: ignore[arg-type]
    assert counts.snapshot() == ([0] * len(BOUNDS), 0.0)


def test_timed_call_forwards_arguments_and_counts_each_call() -> None:
    counts = _speedups.Counts(BOUNDS)
    wrapped = timed_call(double, counts)
    assert wrapped(1.0) == 2.0
    assert wrapped(1.0, 2.0, z=3.0) == 7.0
    assert wrapped(x=1.0, y=1.0) == 3.0
    per_bucket, total = counts.snapshot()
    assert sum(per_bucket) == 3
    assert 0 < total < 1.0  # seconds, not nanoseconds


def test_timed_call_measures_the_call_in_seconds_on_perf_counters_clock() -> None:
    counts = _speedups.Counts(prepare_buckets((0.001, 0.01, 0.1)))
    busy = timed_call(lambda: sum(range(200_000)), counts)
    start = time.perf_counter()
    busy()
    outer = time.perf_counter() - start
    (_, inner) = counts.snapshot()
    # The same clock, read just inside the outer readings; the work (milliseconds) dominates.
    assert outer / 2 < inner <= outer


def test_timed_call_counts_and_reraises_exceptions_unchanged() -> None:
    counts = _speedups.Counts(BOUNDS)
    error = KeyError("missing")

    def fail() -> None:
        raise error

    wrapped = timed_call(fail, counts)
    with pytest.raises(KeyError) as caught:
        wrapped()
    assert caught.value is error
    with pytest.raises(TypeError):
        wrapped(1)  # bad arguments raise from the function, as without the wrapper
    assert sum(counts.snapshot()[0]) == 2


def test_metadata_signature_and_repr_are_the_functions() -> None:
    wrapped = timed_call(double, _speedups.Counts(BOUNDS))
    assert wrapped.__name__ == "double"
    assert wrapped.__qualname__ == "double"
    assert wrapped.__doc__ == "Twice x, plus y and z."
    assert wrapped.__module__ == __name__
    assert wrapped.__wrapped__ is double
    assert inspect.signature(wrapped) == inspect.signature(double)
    assert "double" in repr(wrapped)


class Account:
    def __init__(self, balance: float) -> None:
        self.balance = balance

    def add(self, amount: float) -> float:
        self.balance += amount
        return self.balance


def test_binds_as_a_method_like_a_function() -> None:
    counts = _speedups.Counts(BOUNDS)

    class Timed(Account):
        add = timed_call(Account.add, counts)

    account = Timed(1.0)
    assert account.add(2.0) == 3.0
    bound = account.add
    assert bound.__self__ is account
    assert bound(1.0) == 4.0
    assert Timed.add(account, 1.0) == 5.0  # looked up on the class, it is the plain wrapper
    assert Timed.__dict__["add"] is Timed.add
    assert sum(counts.snapshot()[0]) == 3


def pickled(x: float) -> float:
    return x


pickled = timed_call(pickled, _speedups.Counts(BOUNDS))  # as a decorator binds it


def test_pickles_by_reference_as_functions_do() -> None:
    assert pickle.loads(pickle.dumps(pickled)) is pickled


def test_no_reference_is_leaked_or_kept_per_call() -> None:
    counts = _speedups.Counts(BOUNDS)
    result = object()
    argument = object()

    def identity(value: object) -> object:
        return result

    def fail(value: object) -> object:
        raise ValueError("no")

    timed = timed_call(identity, counts)
    failing = timed_call(fail, counts)
    recorded = _speedups.ObservedCall(identity, counts, value=lambda r: None, on_error=print)
    before = sys.getrefcount(result), sys.getrefcount(argument)
    for _ in range(1000):
        timed(argument)
        recorded(argument)
        with pytest.raises(ValueError, match="no"):
            failing(argument)
    assert (sys.getrefcount(result), sys.getrefcount(argument)) == before


def test_reference_cycles_through_the_wrapper_are_collected() -> None:
    wrapped = timed_call(lambda: None, _speedups.Counts(BOUNDS))
    wrapped.self = wrapped  # a cycle through the wrapper's __dict__
    ref = weakref.ref(wrapped)
    del wrapped
    gc.collect()
    assert ref() is None


def test_recorded_call_observes_a_value_of_the_result() -> None:
    counts = _speedups.Counts(BOUNDS)
    errors: list[BaseException] = []
    wrapped = _speedups.ObservedCall(
        lambda x: x, counts, value=lambda r: r if r != "skip" else None, on_error=errors.append
    )
    assert wrapped(0.5) == 0.5
    assert wrapped(0.05) == 0.05
    assert wrapped("skip") == "skip"  # None: nothing observed
    assert wrapped("text") == "text"  # not a number: reported, the result still returned
    per_bucket, total = counts.snapshot()
    assert per_bucket == [0, 0, 1, 1, 0]
    assert total == 0.55
    assert len(errors) == 1
    assert isinstance(errors[0], TypeError)
    assert errors[0].__traceback__ is None  # raised in C: no Python frames


def test_recorded_call_hands_value_errors_to_on_error_with_their_traceback() -> None:
    errors: list[BaseException] = []

    def value(result: float) -> float:
        return 1 / result

    wrapped = _speedups.ObservedCall(
        lambda x: x, _speedups.Counts(BOUNDS), value=value, on_error=errors.append
    )
    assert wrapped(0) == 0
    assert isinstance(errors[0], ZeroDivisionError)
    assert errors[0].__traceback__ is not None


def test_age_call_observes_seconds_since_the_returned_time() -> None:
    counts = _speedups.Counts(prepare_buckets((0.1, 1.0, 10.0)))
    errors: list[BaseException] = []
    wrapped = _speedups.ObservedCall(lambda at: at, counts, age=True, on_error=errors.append)
    before = time.time()
    assert wrapped(before - 5.0) == before - 5.0
    assert wrapped(None) is None  # nothing observed
    assert wrapped("then") == "then"  # not a time: reported, the result still returned
    after = time.time()
    per_bucket, total = counts.snapshot()
    assert per_bucket == [0, 0, 1, 0]
    assert 5.0 <= total <= 5.0 + (after - before)  # on time.time()'s clock
    assert [type(e) for e in errors] == [TypeError]


def test_recorded_call_lets_base_exceptions_and_call_errors_through() -> None:
    def interrupt(result: object) -> float:
        raise KeyboardInterrupt

    counts = _speedups.Counts(BOUNDS)
    wrapped = _speedups.ObservedCall(lambda: 1.0, counts, value=interrupt, on_error=print)
    with pytest.raises(KeyboardInterrupt):
        wrapped()
    raising = _speedups.ObservedCall(lambda: 1 / 0, counts, value=float, on_error=print)
    with pytest.raises(ZeroDivisionError):
        raising()
    assert counts.snapshot() == ([0] * len(BOUNDS), 0.0)


def test_recorded_call_survives_a_failing_on_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(exc: BaseException) -> None:
        raise RuntimeError("on_error failed")

    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    wrapped = _speedups.ObservedCall(
        lambda: "x", _speedups.Counts(BOUNDS), value=float, on_error=broken
    )
    assert wrapped() == "x"
    assert [str(u.exc_value) for u in unraisable] == ["on_error failed"]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [((1, _speedups.Counts(BOUNDS)), {}, "callable"),
     ((len, object()), {}, "Counts"),
     ((len, _speedups.Counts(BOUNDS)), {"value": float}, "on_error"),
     ((len, _speedups.Counts(BOUNDS)), {"age": True}, "on_error"),
     ((len, _speedups.Counts(BOUNDS)), {"value": float, "age": True, "on_error": print}, "both")],
)  # fmt: skip
def test_bad_constructor_arguments_are_named(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        _speedups.ObservedCall(*args, **kwargs)
