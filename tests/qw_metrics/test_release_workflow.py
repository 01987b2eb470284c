"""The qw-metrics release files are complete: on a version tag the workflow builds the sdist and
a wheel per CPython from 3.11, platform and architecture, then publishes them with trusted
publishing; cibuildwheel reads its configuration and checks each wheel's C extension."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "packages" / "qw-metrics"


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(
        (ROOT / ".github" / "workflows" / "release-qw-metrics.yml").read_text()
    )
    return loaded


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


def test_a_version_tag_builds_sdist_and_wheels_then_publishes() -> None:
    flow = workflow()
    # PyYAML reads the bare key `on` as True.
    assert flow[True] == {"push": {"tags": ["qw-metrics-v*"]}}
    jobs = flow["jobs"]
    assert set(jobs) == {"sdist", "wheels", "publish"}
    runs = [step.get("run", "") for step in jobs["sdist"]["steps"]]
    assert any("uv build --sdist packages/qw-metrics -o dist" in run for run in runs)
    assert any('"qw-metrics-v${version}"' in run for run in runs)  # the tag names the version

    wheels = jobs["wheels"]
    assert wheels["runs-on"] == "${{ matrix.os }}"
    assert wheels["strategy"]["matrix"]["os"] == [
        "ubuntu-latest", "ubuntu-24.04-arm",  # x86_64, aarch64: manylinux and musllinux
        "macos-15-intel", "macos-latest",  # x86_64, arm64
        "windows-latest", "windows-11-arm",  # AMD64, ARM64
    ]  # fmt: skip
    (build,) = steps_using(wheels, "pypa/cibuildwheel")
    assert build["with"] == {"package-dir": "packages/qw-metrics", "output-dir": "wheelhouse"}
    # The action runs the cibuildwheel the tests below run.
    assert build["uses"] == f"pypa/cibuildwheel@v{importlib.metadata.version('cibuildwheel')}"
    uploaded = [s["with"]["path"] for s in steps_using(wheels, "actions/upload-artifact")]
    assert uploaded == ["wheelhouse/*.whl"]

    publish = jobs["publish"]
    assert publish["needs"] == ["sdist", "wheels"]
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    (download,) = steps_using(publish, "actions/download-artifact")
    assert download["with"] == {"path": "dist", "merge-multiple": True}
    assert publish["steps"][-1] == {
        "uses": "pypa/gh-action-pypi-publish@release/v1",
        "with": {"packages-dir": "dist"},
    }
    # Trusted publishing: the workflow holds no token.
    assert "secrets." not in (ROOT / ".github" / "workflows" / "release-qw-metrics.yml").read_text()


PYTHONS = ["cp311", "cp312", "cp313", "cp314"]


def test_cibuildwheel_builds_every_cpython_and_requires_the_extension() -> None:
    config = tomllib.loads((PACKAGE / "pyproject.toml").read_text())
    wheel = config["tool"]["cibuildwheel"]
    assert wheel["build"].split() == [f"{python}-*" for python in PYTHONS]
    assert wheel["archs"] == ["auto64"]
    assert "native_speedups()" in wheel["test-command"]
    assert config["project"]["requires-python"] == ">=3.11"


def identifiers(target: str) -> list[str]:
    """What cibuildwheel would build for `target` on this machine, from pyproject.toml."""
    done = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", target,
         str(PACKAGE)],
        check=False, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("target", ["linux", "macos", "windows"])
def test_cibuildwheel_accepts_the_configuration(target: str) -> None:
    built = identifiers(target)
    if target == "linux":
        machine = platform.machine()
        expected = [f"{p}-{libc}_{machine}" for p in PYTHONS for libc in ("manylinux", "musllinux")]
        assert sorted(built) == sorted(expected)
    else:
        system = "macosx" if target == "macos" else "win"
        assert sorted(i.split("-")[0] for i in built) == PYTHONS
        assert all(i.split("-")[1].startswith(system) for i in built)
