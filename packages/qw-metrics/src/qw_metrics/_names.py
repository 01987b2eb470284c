"""Metric and label name validation: bad names fail when a metric is defined, not when used."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import InvalidNameError

# The classic Prometheus rules (not the UTF-8 extension): every backend, Grafana Cloud included,
# accepts these names unquoted.
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def validate_metric_name(name: str) -> str:
    """Return `name` if it is a valid metric name, else raise InvalidNameError."""
    if not isinstance(name, str) or not _METRIC_NAME.match(name):
        raise InvalidNameError(
            f"invalid metric name {name!r}: use letters, digits, '_' and ':', "
            "not starting with a digit (e.g. 'pipeline_callback_duration_seconds')"
        )
    return name


def validate_label_names(names: Iterable[str], *, reserved: Iterable[str] = ()) -> tuple[str, ...]:
    """Return `names` as a tuple if every one is a valid, unreserved, unique label name."""
    result = tuple(names)
    if isinstance(names, str):
        raise InvalidNameError(
            f"label names must be a sequence of names, not the string {names!r}: write ({names!r},)"
        )
    reserved_set = set(reserved)
    for name in result:
        if not isinstance(name, str) or not _LABEL_NAME.match(name):
            raise InvalidNameError(
                f"invalid label name {name!r}: use letters, digits and '_', "
                "not starting with a digit"
            )
        if name.startswith("__"):
            raise InvalidNameError(f"label name {name!r} is reserved: names starting '__' are")
        if name in reserved_set:
            raise InvalidNameError(f"label name {name!r} is reserved for this metric type")
    if len(set(result)) != len(result):
        raise InvalidNameError(f"label names repeat: {result!r}")
    return result
