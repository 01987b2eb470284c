"""`quotewatch simulate` on the command line: URLs on stdout, faults written as JSON on exit."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from quotewatch.cli.simulate import register
from support.simulate import recv_for, send
from websockets.asyncio.client import connect

pytestmark = pytest.mark.timeout(60)

# Only this command: the full `quotewatch` entry point imports every command first.
SIMULATE = [sys.executable, "-m", "quotewatch.cli.simulate"]


def test_simulate_serves_both_feeds_and_writes_the_injected_faults(tmp_path: Path) -> None:
    faults_json = tmp_path / "faults.json"
    proc = subprocess.Popen(
        [*SIMULATE, "--products", "BTC-USD", "--seed", "3", "--speed", "8",
         "--rate", "3", "--drop-matches", "0.3", "--duration", "1.5",
         "--faults-json", str(faults_json)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [proc.stdout.readline().split() for _ in range(2)]
    assert [line[0] for line in lines] == ["exchange", "advanced"]
    urls = dict(lines)
    assert urls["exchange"].startswith("ws://127.0.0.1:")
    assert urls["exchange"].endswith("/exchange")
    assert urls["advanced"].endswith("/advanced")

    async def trade_ids() -> list[int]:
        async with connect(urls["exchange"]) as ws:
            await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"],
                            "channels": ["matches"]})  # fmt: skip
            texts = await recv_for(ws, 0.8)
        return [m["trade_id"] for m in map(json.loads, texts) if m.get("type") == "match"]

    received = asyncio.run(trade_ids())
    assert proc.wait(timeout=20) == 0
    injected = json.loads(faults_json.read_text())
    dropped = [i for i in injected["dropped_trades"]["BTC-USD"] if received[0] < i < received[-1]]
    assert sorted(set(range(received[0], received[-1] + 1)) - set(received)) == dropped
    assert len(dropped) > 2
    assert injected["connections"][0]["protocol"] == "exchange"


def test_bad_flags_are_refused_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--drop-frames", "2"])
    assert "probability in [0, 1]" in capsys.readouterr().err
    args = parser.parse_args(["simulate", "--products", "FOO-USD"])
    assert args.handler(args) == 2
    args = parser.parse_args(["simulate", "--burst-every", "5", "--burst-duration", "9"])
    assert args.handler(args) == 2
