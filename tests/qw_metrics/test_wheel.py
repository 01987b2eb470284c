"""The qw-metrics wheel stands alone: built, pip-installed into a fresh venv, used there.

Slow-ish (builds a wheel and pip-installs it with its dependencies from PyPI, about half a
minute) but part of CI: it is what proves qw-metrics does not lean on the workspace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from qw_metrics import _values

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(900)

SCRIPT = textwrap.dedent(
    """
    import asyncio, collections
    import qw_metrics
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    registry = CollectorRegistry()
    calls = Counter("calls", "Calls.", registry=registry)

    @qw_metrics.counted(calls)
    @qw_metrics.timed(stage="features", registry=registry)
    def features(x):
        return x + 1

    @qw_metrics.timed(stage="io", registry=registry)
    async def io():
        await asyncio.sleep(0.01)

    buffer = qw_metrics.track_buffer("trade", capacity=10, registry=registry)(
        collections.deque([1, 2, 3])
    )
    assert features(1) == 2
    asyncio.run(io())
    with qw_metrics.timed(stage="block", registry=registry):
        pass
    print("MODULE", qw_metrics.__file__)
    print("NATIVE", qw_metrics.native_speedups())
    print(generate_latest(registry).decode())
    """
)


def build(dist: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`uv build` qw-metrics into `dist`: an sdist, then a wheel built from that sdist."""
    uv = shutil.which("uv")
    assert uv is not None, "uv must be on PATH (scripts/uv-bootstrap.sh installs it)"
    done = subprocess.run(
        [uv, "build", str(ROOT / "packages" / "qw-metrics"), "-o", str(dist)],
        check=False, capture_output=True, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (sdist,) = dist.glob("qw_metrics-*.tar.gz")
    with tarfile.open(sdist) as archive:
        sources = {name.partition("/")[2] for name in archive.getnames()}
    shipped = {"setup.py", "LICENSE", "src/qw_metrics/_speedups.c", "src/qw_metrics/_speedups.pyi",
               "src/qw_metrics/remote_write/remote.proto"}  # fmt: skip
    assert shipped <= sources
    return done


def test_without_a_c_compiler_the_package_builds_in_pure_python(tmp_path: Path) -> None:
    done = build(tmp_path, env=dict(os.environ, CC="/nonexistent/cc"))
    assert 'building extension "qw_metrics._speedups" failed' in done.stdout + done.stderr
    (wheel,) = tmp_path.glob("qw_metrics-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "qw_metrics/_values.py" in names
    assert not [n for n in names if n.endswith(".so")]


def declared_floors() -> dict[str, str]:
    """Each runtime dependency of qw-metrics with the lowest version its metadata allows."""
    text = (ROOT / "packages" / "qw-metrics" / "pyproject.toml").read_text()
    block = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    floors = {}
    for line in block.splitlines():
        spec = line.strip().strip('",')
        if spec:
            name, _, version = spec.partition(">=")
            floors[name] = version
    return floors


IMPORT_EVERYTHING = textwrap.dedent(
    """
    import importlib, pkgutil, qw_metrics
    names = [m.name for m in pkgutil.walk_packages(qw_metrics.__path__, "qw_metrics.")]
    for name in names:
        importlib.import_module(name)
    print("MODULES", len(names))
    """
)


@pytest.mark.parametrize("compiler", [True, False], ids=["with-compiler", "pure-python"])
def test_wheels_work_at_the_lowest_declared_dependency_versions(
    tmp_path: Path, compiler: bool
) -> None:
    env = None if compiler else dict(os.environ, CC="/nonexistent/cc")
    build(tmp_path / "dist", env=env)
    (wheel,) = (tmp_path / "dist").glob("qw_metrics-*.whl")
    floors = declared_floors()
    assert set(floors) == {"prometheus-client", "python-snappy", "httpx"}  # no protobuf
    constraints = tmp_path / "lowest.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in floors.items()))
    python = fresh_venv(tmp_path / "venv")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         "-c", str(constraints), str(wheel)],
        check=False, capture_output=True, text=True, env=clean_env(),
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    for script in (SCRIPT, IMPORT_EVERYTHING):
        (tmp_path / "use_it.py").write_text(script)
        run = subprocess.run(
            [str(python), str(tmp_path / "use_it.py")], check=False, capture_output=True,
            text=True, env=clean_env(), cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        if script is SCRIPT:
            assert f"NATIVE {compiler and _values.BUILT}" in run.stdout
            assert 'pipeline_callback_duration_seconds_count{stage="features"} 1.0' in run.stdout
        else:
            assert int(run.stdout.split()[-1]) >= 15
    frozen = subprocess.run(
        [str(python), "-m", "pip", "freeze"], check=True, capture_output=True, text=True
    ).stdout.lower()
    for name, version in floors.items():
        assert f"{name}=={version}" in frozen.replace("_", "-")
    assert "protobuf" not in frozen


def fresh_venv(where: Path) -> Path:
    """A new venv's python, with nothing but pip."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True)
    return where / "bin" / "python"


def clean_env() -> dict[str, str]:
    """This environment without the workspace's venv or QW_METRICS_DISABLED."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "QW_METRICS_DISABLED"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_wheel_installs_and_works_in_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build(dist)
    (wheel,) = dist.glob("qw_metrics-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"qw_metrics/py.typed", "qw_metrics/_speedups.pyi"} <= set(names)
    # Built where the workspace's own install could compile the C extension.
    assert any(n.startswith("qw_metrics/_speedups.") and n.endswith(".so") for n in names) == (
        _values.BUILT
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.pop("QW_METRICS_DISABLED", None)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", str(wheel)],
        check=False, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    script = tmp_path / "use_it.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [str(python), str(script)], check=False, capture_output=True, text=True, env=env,
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"MODULE {venv}")  # the installed copy, not the workspace's
    assert lines[1] == f"NATIVE {_values.BUILT}"
    assert 'pipeline_callback_duration_seconds_count{stage="features"} 1.0' in lines
    assert 'pipeline_callback_duration_seconds_count{stage="io"} 1.0' in lines
    assert 'pipeline_callback_duration_seconds_count{stage="block"} 1.0' in lines
    io_sum = next(
        x for x in lines if x.startswith('pipeline_callback_duration_seconds_sum{stage="io"}')
    )
    assert float(io_sum.split()[-1]) >= 0.01
    assert "calls_total 1.0" in lines
    assert "trade_buffer_size 3.0" in lines
    assert "trade_buffer_capacity 10.0" in lines
