"""Every Python block of qw-metrics' README runs as written, in a fresh interpreter, and does
what the text around it says; the blocks that push reach a real Prometheus."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.prometheus import PrometheusServer, running_prometheus

README = Path(__file__).resolve().parents[2] / "packages" / "qw-metrics" / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL)

# What each block that does not push prints, by a phrase that only that block contains.
EXPECTED = {
    "count_exceptions=ERRORS": [
        'stage_errors_total{exception="ValueError",stage="risky"} 1.0',
        'flush_seconds_count{mode="batch",table="trades"} 1.0',
        'pipeline_callback_duration_seconds_count{stage="io"} 1.0',
        'pipeline_callback_duration_seconds_count{stage="labeler"} 1.0',
    ],
    "configure_stages(": ["(2.5e-07, 5e-07, 1e-06)"],
    "FAILURES.remove": [
        'flush_failures_total{table="trades"} 1.0',
        'flush_seconds_count{table="trades"} 1.0',
    ],
    "seconds_since)": [
        'messages_total{type="match"} 1.0',
        'rows_total{table="trades"} 2.0',
        "queue_depth 2.0",
        "latency_seconds_count 1.0",
        "updates_per_second 0.1",
    ],
    "queue.Queue(maxsize=100)": [
        "trade_buffer_size 10.0",
        "jobs_buffer_size 1.0",
        "jobs_buffer_capacity 100.0",
        "labeler_buffer_capacity 1000.0",
    ],
    "set_series_budget(2_000)": ["2000"],
    "SequenceTracker(": [
        "SequenceStats(observed=4, gaps=1, missed=2, duplicates=1, late=1,",
        "['BTC-USD']",
    ],
}


# The blocks that push, by a phrase only that block contains: what they print, and the series
# they must have left in Prometheus with its value.
PUSHING = {
    "RemoteWriteClient(URL": (
        r"sent [1-9]\d* samples, 0 failed",
        'app_starts_total{job="quotewatch",instance="host-1",environment="prod"}',
    ),
    "MetricsPusher.from_env": (r"enabled True, sent [1-9]\d* samples", 'app_up{job="quotewatch"}'),
}


def pushes(block: str) -> bool:
    return any(key in block for key in PUSHING)


@pytest.fixture(scope="module")
def prom() -> Iterator[PrometheusServer]:
    with running_prometheus() as server:
        yield server


def test_every_block_is_checked() -> None:
    checked = [block for block in BLOCKS if any(key in block for key in EXPECTED)]
    pushing = [block for block in BLOCKS if pushes(block)]
    assert len(checked) == 7
    assert len(pushing) == 2
    assert len(checked) + len(pushing) == len(BLOCKS)


def run(block: str, tmp_path: Path, env: dict[str, str]) -> str:
    """Runs `block` as a script in a fresh interpreter, in an environment without qw-metrics'
    or Grafana's variables (plus `env`); returns what it printed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GRAFANA_", "QW_"))}
    clean.pop("PROMETHEUS_MULTIPROC_DIR", None)
    script = tmp_path / "block.py"
    script.write_text(block)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env={**clean, **env},
        cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "block",
    [block for block in BLOCKS if not pushes(block)],
    ids=lambda block: next(key for key in EXPECTED if key in block),
)
def test_block_runs_as_written(block: str, tmp_path: Path) -> None:
    out = run(block, tmp_path, {})
    for key, lines in EXPECTED.items():
        if key in block:
            for line in lines:
                assert line in out, f"{line!r} not in the output:\n{out}"


@pytest.mark.prometheus
@pytest.mark.parametrize("key", list(PUSHING))
def test_pushing_block_reaches_prometheus(key: str, prom: PrometheusServer, tmp_path: Path) -> None:
    (block,) = [block for block in BLOCKS if key in block]
    url = prom.remote_write_url
    assert url.endswith("/api/v1/write")
    out = run(block, tmp_path, {"QW_PUSH_URL": url, "GRAFANA_PUSH_URL": url})
    printed, series = PUSHING[key]
    assert re.search(printed, out), out
    # The final push ends each series with a staleness marker, so ask for its last real value.
    assert prom.query_value(f"last_over_time({series}[5m])") == 1.0
