"""Helpers for tests that talk to the local exchange (`quotewatch.simulate`) over websockets."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

FIXED_START_US = 1_780_000_000_000_000  # 2026-05-28T20:26:40Z: a fixed simulated start time


@contextmanager
def simulate_process(quotewatch: str, *args: str) -> Iterator[str]:
    """Run `quotewatch simulate ARGS` as a process; yield its Exchange websocket URL."""
    proc = subprocess.Popen([quotewatch, "simulate", *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield next(line.split()[1] for line in proc.stdout if line.startswith("exchange "))
    finally:
        proc.terminate()
        proc.wait(10)


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    """Send one JSON message."""
    await ws.send(json.dumps(message))


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> Any:
    """The next frame, parsed."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_texts(ws: ClientConnection, count: int, timeout: float = 10.0) -> list[str]:
    """The next `count` frames, raw."""
    async with asyncio.timeout(timeout):
        return [str(await ws.recv()) for _ in range(count)]


async def recv_for(ws: ClientConnection, seconds: float) -> list[str]:
    """Every frame that arrives within `seconds` (or until the connection closes)."""
    out: list[str] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    try:
        while (left := end - loop.time()) > 0:
            out.append(str(await asyncio.wait_for(ws.recv(), left)))
    except (TimeoutError, ConnectionClosed):
        pass
    return out


async def drain(ws: ClientConnection, quiet: float = 0.2) -> list[str]:
    """Every frame until none has come for `quiet` seconds."""
    out: list[str] = []
    try:
        while True:
            out.append(str(await asyncio.wait_for(ws.recv(), quiet)))
    except (TimeoutError, ConnectionClosed):
        pass
    return out


def parse_all(texts: list[str]) -> list[Any]:
    """Parse frames, skipping any that are not JSON."""
    out = []
    for text in texts:
        try:
            out.append(json.loads(text))
        except ValueError:
            continue
    return out


async def until_closed(ws: ClientConnection, timeout: float = 10.0) -> ConnectionClosed:
    """Read until the server closes the connection; return how it closed."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed
