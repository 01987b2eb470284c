"""Run a real, throwaway Prometheus for tests: loopback port, temp storage, remote-write receiver.

    with running_prometheus() as prom:
        client = RemoteWriteClient(prom.remote_write_url)
        ...
        assert prom.query_value('up{job="x"}') == 1.0

Tests using it carry ``@pytest.mark.prometheus`` (tests/conftest.py skips them when the Debian
``prometheus`` package is missing). The receiver (Prometheus 2.42) only accepts samples near
now (not much older than the newest sample it holds) and in timestamp order per series; it
answers 400 otherwise. Pushed samples are queryable as soon as the push returns.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

MINIMAL_CONFIG = "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n"


class PrometheusError(RuntimeError):
    """Prometheus did not start, or a query failed."""


@dataclass(frozen=True)
class PrometheusServer:
    """A running Prometheus: its base URL, remote-write URL, and query helpers."""

    url: str
    data_dir: Path
    log_path: Path

    @property
    def remote_write_url(self) -> str:
        """Where the remote-write receiver listens."""
        return f"{self.url}/api/v1/write"

    def query(self, expr: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query via /api/v1/query; returns the result list (vector results)."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10.0)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"query {expr!r} failed: HTTP {response.status_code} {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query_value(self, expr: str, *, at: float | None = None) -> float:
        """The value of a query that must return exactly one series."""
        result = self.query(expr, at=at)
        if len(result) != 1:
            raise PrometheusError(f"query {expr!r} returned {len(result)} series: {result}")
        return float(result[0]["value"][1])

    def query_values(self, expr: str, *, by: str, at: float | None = None) -> dict[str, float]:
        """Values of a query keyed by the label ``by``."""
        return {
            series["metric"].get(by, ""): float(series["value"][1])
            for series in self.query(expr, at=at)
        }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def running_prometheus(
    *,
    config: str = MINIMAL_CONFIG,
    extra_args: tuple[str, ...] = (),
    files: Mapping[str, str] | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[PrometheusServer]:
    """Start ``prometheus`` with the remote-write receiver on a free loopback port and a temp
    TSDB; stop it and delete its data on exit. ``files`` are written next to the config (e.g.
    rule files the config names)."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise PrometheusError("prometheus is not on PATH: apt-get install prometheus")
    with tempfile.TemporaryDirectory(prefix="qw-prometheus-") as tmp:
        root = Path(tmp)
        config_path = root / "prometheus.yml"
        config_path.write_text(config)
        for name, text in (files or {}).items():
            (root / name).write_text(text)
        data_dir = root / "data"
        log_path = root / "prometheus.log"
        for _ in range(3):  # the free port can be taken between probing and binding
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config_path}",
                        f"--storage.tsdb.path={data_dir}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--web.enable-remote-write-receiver",
                        *extra_args,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=root,
                )
            try:
                if _wait_ready(url, process, startup_timeout):
                    yield PrometheusServer(url=url, data_dir=data_dir, log_path=log_path)
                    return
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        tail = log_path.read_text(errors="replace")[-2000:]
        raise PrometheusError(f"prometheus did not become ready; log tail:\n{tail}")
