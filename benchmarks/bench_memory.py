"""Resident memory of `quotewatch run` against the local exchange, for 1 and 5 products.

Sizes the Cloud Run memory limit (deploy/cloudrun/service.yaml: 1 GiB). Each case starts
`quotewatch simulate` and `quotewatch run` (storage on, dashboard on, as the service runs),
samples the run's RSS every second, and prints one row: the steady state (median of the second
half of the run) and the peak before shutdown (VmHWM).

    uv run python benchmarks/bench_memory.py --seconds 90
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRODUCT_SETS = ("BTC-USD", "BTC-USD,ETH-USD,SOL-USD,LTC-USD,AVAX-USD")


def status_mib(pid: int, field: str) -> float:
    """A size from /proc/PID/status in MiB: VmRSS (now) or VmHWM (peak since exec).

    Not getrusage's ru_maxrss for the peak: Linux carries that over exec from the forked copy
    of the parent.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def measure(products: str, seconds: float) -> tuple[float, float]:
    """(steady-state RSS, peak RSS) in MiB of one run."""
    quotewatch = [str(Path(sys.executable).parent / "quotewatch")]
    sim = subprocess.Popen(
        [*quotewatch, "simulate", "--products", products], stdout=subprocess.PIPE, text=True
    )
    assert sim.stdout is not None
    url = next(line.split()[1] for line in sim.stdout if line.startswith("exchange "))
    with tempfile.TemporaryDirectory() as data_dir:
        command = [*quotewatch, "run", "--url", url, "--products", products, "--port", "0",
                   "--data-dir", data_dir]  # fmt: skip
        run = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        samples = []
        for _ in range(int(seconds)):
            time.sleep(1)
            samples.append(status_mib(run.pid, "VmRSS"))
        peak = status_mib(run.pid, "VmHWM")
        run.send_signal(signal.SIGTERM)
        run.wait()
    sim.terminate()
    sim.wait()
    return statistics.median(samples[len(samples) // 2 :]), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="length of each run")
    args = parser.parse_args()
    print(f"{'products':>8} {'steady MiB':>11} {'peak MiB':>9}  ({args.seconds:g} s runs)")
    for products in PRODUCT_SETS:
        steady, peak = measure(products, args.seconds)
        print(f"{products.count(',') + 1:>8} {steady:>11.0f} {peak:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
