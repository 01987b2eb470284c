"""The release as Cloud Run runs it: wheels from scripts/build-release, installed with plain pip
into a fresh venv (the Dockerfile's steps, without Docker), then `quotewatch run` from there.

Against the local exchange, with Cloud Run's environment (PORT, K_SERVICE): the probes and
/metrics answer on PORT, logs are JSON lines, SIGTERM ends the run within the 8 s budget, peak
RSS stays under half the service's 1 GiB limit, and the tables read back what the summary says.
Slow (a pip install of every locked dependency, about a minute with a warm pip cache), but it
is what proves the image's install path works.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.prometheus import free_port
from support.simulate import simulate_process
from support.storage import read_table

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT_MIB = 1024  # deploy/cloudrun/service.yaml
SHUTDOWN_BUDGET = 8.0

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin dir of a fresh venv holding the release, installed as the Dockerfile does."""
    base = tmp_path_factory.mktemp("release")
    dist = base / "dist"
    subprocess.run([str(ROOT / "scripts" / "build-release"), str(dist)], check=True)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run([*pip, "-r", str(dist / "requirements.txt")], check=True)
    subprocess.run([*pip, *map(str, sorted(dist.glob("*.whl")))], check=True)
    return venv / "bin"


@pytest.fixture
def exchange(installed: Path) -> Iterator[str]:
    with simulate_process(
        str(installed / "quotewatch"), "--products", "BTC-USD", "--seed", "3"
    ) as url:
        yield url


def _peak_rss_kib(pid: int) -> int:
    """The process's peak RSS so far (VmHWM), 0 once it has exited.

    Not getrusage's ru_maxrss: Linux carries that over exec from the forked copy of the parent,
    so a child of a large pytest process would report pytest's size.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:")), 0)


def _wait_ready(base: str, proc: subprocess.Popen[str], timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "quotewatch run exited before it was ready"
        try:
            response = httpx.get(f"{base}/ready", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"/ready never said 200 within {timeout} s")


def test_installed_release_runs_as_on_cloud_run_and_stops_within_the_budget(
    installed: Path, exchange: str, tmp_path: Path
) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    summary_path = tmp_path / "summary.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QW_", "GRAFANA_"))}
    env.update({"PORT": str(port), "K_SERVICE": "quotewatch-test", "K_REVISION": "r1"})
    command = [str(installed / "quotewatch"), "run", "--url", exchange, "--products", "BTC-USD",
               "--data-dir", str(data_dir), "--flush-interval", "1",
               "--summary-json", str(summary_path)]  # fmt: skip
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_ready(base, proc, timeout=90)
        assert ready.json()["storage"] == "open"
        time.sleep(6)  # several flushes and a few hundred book updates
        health = httpx.get(f"{base}/health", timeout=5)
        assert (health.status_code, health.json()["status"]) == (200, "ok")
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert "coinbase_messages_received_total{" in metrics
        assert httpx.get(f"{base}/", timeout=5).status_code == 200  # the dashboard is on PORT
        peak_kib = _peak_rss_kib(proc.pid)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        while proc.poll() is None:  # the shutdown's peak too, until the process is gone
            peak_kib = max(peak_kib, _peak_rss_kib(proc.pid))
            time.sleep(0.01)
        elapsed = time.monotonic() - sent
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    assert proc.stdout is not None
    assert proc.stderr is not None
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 0, stderr[-3000:]
    assert elapsed < SHUTDOWN_BUDGET, f"shutdown took {elapsed:.2f} s"
    peak_mib = peak_kib / 1024
    print(f"shutdown {elapsed:.2f} s, peak RSS {peak_mib:.0f} MiB")
    assert peak_mib < MEMORY_LIMIT_MIB / 2

    entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert entries, "no log lines"
    assert all({"severity", "message", "logger", "time"} <= e.keys() for e in entries)
    assert any("dashboard serving on" in e["message"] for e in entries)
    # The summary goes to stdout on one line: one Cloud Logging entry, not one per line.
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary == json.loads(summary_path.read_text())

    storage = summary["storage"]
    # The model predicts a few seconds in, so this short run may or may not expect predictions.
    predicted = summary["pipeline"]["predictions"] > 0
    assert storage["completeness"] == {
        "raw_orderbook": 1.0, "raw_trades": 1.0, "features": 1.0,
        "predictions": 1.0 if predicted else None,
    }  # fmt: skip
    for table, written in storage["rows_written"].items():
        assert len(read_table(data_dir, table)) == written, table
    assert storage["rows_written"]["raw_orderbook"] >= 50
