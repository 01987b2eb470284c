"""Numeric settings reject non-finite and out-of-range values with one message naming the value
(issue 18: `--flush-interval inf` killed the writer thread, `--push-interval 0.001` was taken)."""

from __future__ import annotations

import argparse

import pytest
from quotewatch.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("flush_interval", "inf"),
        ("flush_interval", "nan"),
        ("flush_interval", "-1"),
        ("push_interval", "0.001"),
        ("push_interval", "inf"),
        ("label_threshold", "inf"),
        ("port", "99999"),
        ("port", "-1"),
        ("flush_rows", "0"),
        ("max_id_jump", "0"),
    ],
)
def test_bad_numbers_are_refused_naming_the_flag_and_value(name: str, value: str) -> None:
    args = argparse.Namespace(**{name: value})
    with pytest.raises(ConfigError) as caught:
        Settings.resolve(args, environ={})
    message = str(caught.value)
    assert f"--{name.replace('_', '-')}={value!r} is invalid" in message
    assert "\n" not in message


def test_environment_values_are_checked_the_same_way() -> None:
    with pytest.raises(ConfigError, match=r"QW_PUSH_INTERVAL='0.5' is invalid: must be at least 1"):
        Settings.resolve(None, environ={"QW_PUSH_INTERVAL": "0.5"})


def test_good_values_resolve() -> None:
    args = argparse.Namespace(push_interval="1", flush_interval="0.5", max_id_jump="500")
    settings = Settings.resolve(args, environ={})
    assert (settings.push_interval, settings.flush_interval, settings.max_id_jump) == (1, 0.5, 500)
