"""The workspace is laid out as documented."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_packages_are_installed_from_the_workspace() -> None:
    assert importlib.metadata.version("qw-metrics") == "0.1.0"
    assert importlib.metadata.version("quotewatch") == "0.1.0"
    assert (ROOT / "packages/qw-metrics/src/qw_metrics/py.typed").is_file()


def test_qw_metrics_runtime_dependencies_are_only_the_three() -> None:
    # protobuf is not among them: the encoder writes the wire format by hand.
    requires = importlib.metadata.requires("qw-metrics") or []
    names = sorted(r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in requires)
    assert names == ["httpx", "prometheus-client", "python-snappy"]
