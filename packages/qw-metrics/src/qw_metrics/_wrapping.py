"""What every qw_metrics decorator does the same way: descriptors, generators, metadata."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def unwrap_descriptor(
    func: Any, decorate: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> Any:
    """Apply `decorate` to a function, or to the function inside a staticmethod/classmethod."""
    if isinstance(func, staticmethod):
        return staticmethod(decorate(func.__func__))
    if isinstance(func, classmethod):
        return classmethod(decorate(func.__func__))
    return decorate(func)


def check_decoratable(func: object, decorator: str) -> None:
    """Raise TypeError for what the decorator cannot wrap: non-callables and generators."""
    if not callable(func):
        raise TypeError(f"{decorator} decorates functions, not {type(func).__name__} objects")
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{decorator} cannot decorate generator function "
            f"{getattr(func, '__qualname__', func)}: its body runs lazily as the caller "
            "iterates, so the call would only measure creating the generator. Decorate a "
            "function that consumes it instead."
        )
