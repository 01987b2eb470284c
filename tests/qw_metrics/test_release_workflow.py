"""The qw-metrics release files are complete: the workflow builds the sdist and every
platform's wheels on a version tag and publishes them, and cibuildwheel builds and checks the
C extension for each CPython from 3.11."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(
        (ROOT / ".github" / "workflows" / "release-qw-metrics.yml").read_text()
    )
    return loaded


def test_a_version_tag_builds_sdist_and_wheels_then_publishes() -> None:
    flow = workflow()
    # PyYAML reads the bare key `on` as True.
    assert flow[True] == {"push": {"tags": ["qw-metrics-v*"]}}
    jobs = flow["jobs"]
    assert set(jobs) == {"sdist", "wheels", "publish"}
    assert any(
        "uv build --sdist packages/qw-metrics" in s.get("run", "") for s in jobs["sdist"]["steps"]
    )
    wheels = jobs["wheels"]
    systems = wheels["strategy"]["matrix"]["os"]
    assert any(s.startswith("ubuntu") for s in systems)
    assert any(s.startswith("macos") for s in systems)
    assert any(s.startswith("windows") for s in systems)
    (build,) = [s for s in wheels["steps"] if s.get("uses", "").startswith("pypa/cibuildwheel@")]
    assert build["with"]["package-dir"] == "packages/qw-metrics"
    publish = jobs["publish"]
    assert publish["needs"] == ["sdist", "wheels"]
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["steps"][-1]["uses"] == "pypa/gh-action-pypi-publish@release/v1"


def test_cibuildwheel_builds_every_cpython_from_311_and_requires_the_extension() -> None:
    config = tomllib.loads((ROOT / "packages" / "qw-metrics" / "pyproject.toml").read_text())
    wheel = config["tool"]["cibuildwheel"]
    assert wheel["build"].split() == ["cp311-*", "cp312-*", "cp313-*", "cp314-*"]
    assert "native_speedups()" in wheel["test-command"]
    for platform in ("linux", "macos", "windows"):
        assert wheel[platform]["archs"]
    requires = config["project"]["requires-python"]
    assert requires == ">=3.11"
