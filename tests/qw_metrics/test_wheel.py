"""qw-metrics as an adopter gets it: an sdist, wheels built from that sdist (with and without a C
compiler), each pip-installed into a fresh venv and used there, at the lowest dependency
versions the package declares and at the newest.

Slow-ish (three wheel builds and three venvs that pip fills from PyPI, about half a minute) but
part of CI: it is what proves qw-metrics does not lean on the workspace, and that its declared
floors are true.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from qw_metrics import _values

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "packages" / "qw-metrics"
SOURCE = PACKAGE / "src"

pytestmark = pytest.mark.timeout(900)

NO_COMPILER = {"CC": "/nonexistent/cc"}

# A tiny use of each part, pushing to a receiver in the same process: that exercises httpx and
# python-snappy, not only their imports, and prometheus_client's internals that the direct read
# of remote_write/collect.py relies on.
SCRIPT = textwrap.dedent(
    """
    import asyncio, collections, http.server, threading
    import qw_metrics
    from prometheus_client import CollectorRegistry, Counter, generate_latest
    from qw_metrics.remote_write.compress import decompress_block

    registry = CollectorRegistry()
    calls = Counter("calls", "Calls.", registry=registry)
    frames = qw_metrics.Counter("frames", "Frames parsed.", ["type"], registry=registry)

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
    frames.labels("match").inc(2)

    bodies = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            bodies.append((self.headers["Content-Encoding"], decompress_block(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/v1/write"
    with qw_metrics.RemoteWriteClient(url) as client:
        pushed = client.push(registry)
    server.shutdown()
    ((encoding, request),) = bodies
    print("MODULE", qw_metrics.__file__)
    print("NATIVE", qw_metrics.native_speedups())
    print("PUSHED", encoding, pushed.sent, pushed.failed, b"frames_total" in request)
    print(generate_latest(registry).decode())
    """
)

IMPORT_EVERYTHING = textwrap.dedent(
    """
    import importlib, pkgutil, qw_metrics
    for module in pkgutil.walk_packages(qw_metrics.__path__, "qw_metrics."):
        importlib.import_module(module.name)
        print(module.name)
    """
)


@dataclass(frozen=True)
class Built:
    wheel: Path
    log: str


def uv() -> str:
    found = shutil.which("uv")
    assert found is not None, "uv must be on PATH (scripts/uv-bootstrap.sh installs it)"
    return found


def uv_build(*args: str | Path, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        [uv(), "build", *map(str, args)], check=False, capture_output=True, text=True, cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def lowest(requirements: list[str]) -> dict[str, Version]:
    """Each requirement's `>=` floor: the only bound qw-metrics declares, so what pip may pick."""
    floors = {}
    for text in requirements:
        requirement = Requirement(text)
        (bound,) = requirement.specifier
        assert bound.operator == ">=", f"{text}: only a floor is expected"
        floors[canonicalize_name(requirement.name)] = Version(bound.version)
    return floors


def constraints(floors: Mapping[str, Version], where: Path) -> Path:
    where.write_text("".join(f"{name}=={version}\n" for name, version in floors.items()))
    return where


def pyproject() -> dict[str, Any]:
    return tomllib.loads((PACKAGE / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("sdist")
    uv_build("--sdist", PACKAGE, "-o", dist)
    (built,) = dist.glob("qw_metrics-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def lowest_wheels(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Built]:
    """Wheels built from the sdist with setuptools at its declared floor, by compiler."""
    floors = lowest(pyproject()["build-system"]["requires"])
    pins = constraints(floors, sdist.parent / "build-lowest.txt")
    wheels = {}
    for compiler in (True, False):
        dist = tmp_path_factory.mktemp("wheel")
        env = None if compiler else NO_COMPILER
        log = uv_build("--wheel", sdist, "-o", dist, "--build-constraints", pins, env=env)
        (wheel,) = dist.glob("qw_metrics-*.whl")
        wheels[compiler] = Built(wheel, log)
    return wheels


def test_the_sdist_ships_the_sources_the_license_and_the_wire_format(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    assert {"setup.py", "pyproject.toml", "README.md", "LICENSE", "src/qw_metrics/_speedups.c",
            "src/qw_metrics/_speedups.pyi", "src/qw_metrics/py.typed",
            "src/qw_metrics/remote_write/remote.proto"} <= names  # fmt: skip
    # Generated protobuf code is the tests' business, not the package's.
    assert not [name for name in names if "_pb2" in name]


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


@pytest.mark.parametrize("compiler", [True, False], ids=["with-compiler", "pure-python"])
def test_a_wheel_from_the_sdist_has_the_extension_only_where_it_compiles(
    lowest_wheels: dict[bool, Built], compiler: bool
) -> None:
    built = lowest_wheels[compiler]
    names = set(zipfile.ZipFile(built.wheel).namelist())
    assert {"qw_metrics/py.typed", "qw_metrics/_speedups.pyi",
            "qw_metrics/remote_write/remote.proto",
            "qw_metrics-0.1.0.dist-info/licenses/LICENSE"} <= names  # fmt: skip
    assert not [name for name in names if "_pb2" in name]
    compiled = [n for n in names if n.startswith("qw_metrics/_speedups.") and n.endswith(".so")]
    # With a compiler, the wheel has the extension wherever the workspace's install built it.
    assert bool(compiled) == (compiler and _values.BUILT)
    failed = 'building extension "qw_metrics._speedups" failed' in built.log
    assert failed == (not compiler)
    meta = metadata(built.wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta.get_all("Requires-Dist") == pyproject()["project"]["dependencies"]


def modules_in_the_source_tree() -> set[str]:
    """qw_metrics and every qw_metrics.* module, as the workspace's source has them now."""
    names = set()
    for path in (SOURCE / "qw_metrics").rglob("*.py"):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def fresh_venv(where: Path) -> Path:
    """A new venv's python, with nothing but pip."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True)
    return where / "bin" / "python"


def clean_env() -> dict[str, str]:
    """This environment without the workspace's venv or anything that changes qw_metrics."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "QW_METRICS_DISABLED", "PROMETHEUS_MULTIPROC_DIR"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def install_and_use(wheel: Path, where: Path, pins: Path | None, compiler: bool) -> Path:
    """pip-install `wheel` (constrained by `pins`) into a fresh venv, check that every module
    imports and that the tiny use records and pushes the right values; returns the venv's python."""
    python = fresh_venv(where / "venv")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    install = subprocess.run(
        [*pip, *(["-c", str(pins)] if pins else []), str(wheel)],
        check=False, capture_output=True, text=True, env=clean_env(),
    )  # fmt: skip
    assert install.returncode == 0, install.stderr

    def run(script: str) -> list[str]:
        (where / "use_it.py").write_text(script)
        done = subprocess.run(
            [str(python), str(where / "use_it.py")], check=False, capture_output=True,
            text=True, env=clean_env(), cwd=where,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    imported = set(run(IMPORT_EVERYTHING))
    native = {"qw_metrics._speedups"} if compiler and _values.BUILT else set()
    assert imported | {"qw_metrics"} == modules_in_the_source_tree() | native

    lines = run(SCRIPT)
    assert lines[0].startswith(f"MODULE {where / 'venv'}")  # the installed copy
    assert lines[1] == f"NATIVE {compiler and _values.BUILT}"
    exposition = lines[3:]
    for stage in ("features", "io", "block"):
        assert f'pipeline_callback_duration_seconds_count{{stage="{stage}"}} 1.0' in exposition
    io_sum = next(
        x for x in exposition if x.startswith('pipeline_callback_duration_seconds_sum{stage="io"}')
    )
    assert float(io_sum.split()[-1]) >= 0.01
    assert "calls_total 1.0" in exposition
    assert 'frames_total{type="match"} 2.0' in exposition
    assert "trade_buffer_size 3.0" in exposition
    assert "trade_buffer_capacity 10.0" in exposition
    # One sample per exposed series, `_created` left out, all in one snappy request.
    samples = [x for x in exposition if x and not x.startswith("#") and "_created" not in x]
    assert lines[2] == f"PUSHED snappy {len(samples)} 0 True"
    return python


def frozen(python: Path) -> dict[str, Version]:
    out = subprocess.run(
        [str(python), "-m", "pip", "freeze"], check=True, capture_output=True, text=True
    ).stdout
    pairs = (line.split("==") for line in out.splitlines() if "==" in line)
    return {canonicalize_name(name): Version(version) for name, version in pairs}


@pytest.mark.parametrize("compiler", [True, False], ids=["with-compiler", "pure-python"])
def test_wheels_work_at_the_lowest_declared_dependency_versions(
    lowest_wheels: dict[bool, Built], compiler: bool, tmp_path: Path
) -> None:
    floors = lowest(metadata(lowest_wheels[compiler].wheel).get_all("Requires-Dist") or [])
    assert set(floors) == {"prometheus-client", "python-snappy", "httpx"}  # no protobuf
    pins = constraints(floors, tmp_path / "lowest.txt")
    python = install_and_use(lowest_wheels[compiler].wheel, tmp_path, pins, compiler)
    installed = frozen(python)
    assert {name: installed[name] for name in floors} == floors
    assert "protobuf" not in installed


def test_the_newest_build_and_dependencies_work_too(sdist: Path, tmp_path: Path) -> None:
    uv_build("--wheel", sdist, "-o", tmp_path / "dist")
    (wheel,) = (tmp_path / "dist").glob("qw_metrics-*.whl")
    python = install_and_use(wheel, tmp_path, None, compiler=True)
    installed = frozen(python)
    floors = lowest(metadata(wheel).get_all("Requires-Dist") or [])
    assert all(installed[name] >= floor for name, floor in floors.items())


def test_the_test_only_protobuf_floor_matches_the_generated_code() -> None:
    """remote_pb2 refuses a protobuf runtime older than the protoc that generated it."""
    generated = (ROOT / "tests" / "support" / "remote_pb2.py").read_text()
    (gencode,) = re.findall(r"^# Protobuf Python Version: (\S+)$", generated, re.MULTILINE)
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    (protobuf,) = [Requirement(r) for r in dev if Requirement(r).name == "protobuf"]
    assert str(protobuf.specifier) == f">={gencode}"
