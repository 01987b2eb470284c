"""The local exchange: one websockets server on loopback that serves the Coinbase Exchange feed
at `/exchange` and the Advanced Trade feed at `/advanced`, both driven by one simulated market.

    async with LocalExchange(products=("BTC-USD",), seed=1) as ex:
        ... connect to ex.exchange_url or ex.advanced_url ...
        ex.pause()   # the market stops: no updates, no trades, no heartbeats
        ex.resume()
        ex.injected  # every fault injected, exactly

It lives on the event loop that started it: call `pause()`/`resume()` from that loop (from
another thread, through `loop.call_soon_threadsafe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Iterable
from http import HTTPStatus
from types import TracebackType
from typing import Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from quotewatch.simulate.advanced_protocol import AdvancedSession
from quotewatch.simulate.exchange_protocol import ExchangeSession
from quotewatch.simulate.faults import (
    ConnectionFaults,
    ConnectionRecord,
    Faults,
    Frame,
    Injected,
    MatchDropper,
)
from quotewatch.simulate.market import TICK_US, US, Event, Market
from quotewatch.simulate.rest import RestFaults, TradeHistory, TradesEndpoint

log = logging.getLogger(__name__)

EXCHANGE_PATH = "/exchange"
ADVANCED_PATH = "/advanced"
STEP_S = 0.01  # how often the market catches up with the clock
ABORT_AFTER_S = 2.0
SLOW_CONSUMER = json.dumps(
    {
        "type": "error",
        "message": "too many messages pending: read faster",
        "reason": "ErrSlowConsume",
    },
    separators=(",", ":"),
)


class _Session(Protocol):
    protocol: str
    subscribed: bool

    def handle(self, text: str | bytes) -> list[Frame]: ...
    def on_events(self, events: Iterable[Event]) -> list[Frame]: ...
    def malformed_frame(self, rng: random.Random, after: Frame) -> str: ...
    def number(self, frame: Frame) -> Frame: ...


class _Connection:
    """One client: its session, its fault injector and its bounded outgoing queue."""

    def __init__(
        self, ws: ServerConnection, session: _Session, faults: ConnectionFaults, max_pending: int
    ) -> None:
        self.ws = ws
        self.session = session
        self.faults = faults
        self._max_pending = max_pending
        self._queue: deque[str] = deque()
        self._ready = asyncio.Event()
        self._close: tuple[int, str] | None = None

    def push(self, frames: Iterable[Frame]) -> None:
        if self._close is not None:
            return
        self._queue.extend(self.faults.apply(frames))
        if len(self._queue) > self._max_pending:
            # Like Coinbase: a client that cannot keep up gets an error and is cut off.
            self._queue.clear()
            self._queue.append(SLOW_CONSUMER)
            self.close(1008, "ErrSlowConsume")
        self._ready.set()

    def close(self, code: int, reason: str) -> None:
        if self._close is None:
            self._close = (code, reason)
            self.faults.record.disconnected = reason
            self._ready.set()
            # A client that stopped reading never takes the close frame: cut it off then.
            asyncio.get_running_loop().call_later(ABORT_AFTER_S, self._abort)

    def _abort(self) -> None:
        if self.ws.state is not State.CLOSED:
            self.ws.transport.abort()

    async def send_loop(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._queue:
                    await self.ws.send(self._queue.popleft())
                if self._close is not None:
                    await self.ws.close(*self._close)
                    return


class LocalExchange:
    """A simulated Coinbase on loopback, serving both feeds; an async context manager."""

    def __init__(
        self,
        products: Iterable[str] = ("BTC-USD", "ETH-USD"),
        *,
        seed: int = 0,
        rate: float = 1.0,
        depth: int = 1000,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        start_time_us: int | None = None,
        speed: float = 1.0,
        start_paused: bool = False,
        subscribe_timeout: float = 5.0,
        max_pending: int = 10_000,
        auth_secret: str | None = None,
        rest_faults: RestFaults | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0 simulated seconds per second, got {speed}")
        if not subscribe_timeout > 0:
            raise ValueError(f"subscribe_timeout must be > 0 seconds, got {subscribe_timeout}")
        self.faults = faults or Faults()
        start = time.time_ns() // 1000 if start_time_us is None else start_time_us
        self.market = Market(
            products, seed=seed, start_us=start, depth=depth, rate=rate, bursts=self.faults.bursts
        )
        self.injected = Injected()
        self._seed = seed
        self._host = host
        self._port = port
        self._speed = speed
        self._subscribe_timeout = subscribe_timeout
        self._max_pending = max_pending
        self._auth_secret = auth_secret
        self._heartbeat_base = random.Random(f"quotewatch-simulate:{seed}:uptime").randrange(
            10_000, 100_000
        )
        self.rest = TradesEndpoint(
            TradeHistory(self.market), self.market.products, rest_faults or RestFaults(), seed
        )
        self._dropper = MatchDropper(self.faults.drop_matches, seed, self.injected)
        self._paused = start_paused
        self._sim_base = start
        self._wall_base = 0.0
        self._connections: set[_Connection] = set()
        self._next_id = 0
        self._server: Server | None = None
        self._market_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"LocalExchange(products={list(self.market.products)}, port={self._port})"

    @property
    def port(self) -> int:
        """The port it listens on (the real one once started with port 0)."""
        return self._port

    @property
    def exchange_url(self) -> str:
        """The Coinbase Exchange feed URL, e.g. ws://127.0.0.1:PORT/exchange."""
        return f"ws://{self._host}:{self._port}{EXCHANGE_PATH}"

    @property
    def advanced_url(self) -> str:
        """The Advanced Trade feed URL, e.g. ws://127.0.0.1:PORT/advanced."""
        return f"ws://{self._host}:{self._port}{ADVANCED_PATH}"

    @property
    def rest_url(self) -> str:
        """The REST API's base URL, e.g. http://127.0.0.1:PORT (`/products/{id}/trades`)."""
        return f"http://{self._host}:{self._port}"

    @property
    def paused(self) -> bool:
        """Whether the market is stopped."""
        return self._paused

    def pause(self) -> None:
        """Stop the market: the simulated clock stands still and nothing more is sent.

        The clock first runs on to the next 50 ms boundary, so every batch in progress is sent
        and a snapshot taken while paused agrees with the updates before it."""
        if not self._paused:
            now = self._sim_now()
            self._sim_base = now + (-now) % TICK_US
            self._paused = True
            self._step()

    def resume(self) -> None:
        """Restart the market from where it stopped."""
        if self._paused:
            self._wall_base = asyncio.get_running_loop().time()
            self._paused = False

    def _sim_now(self) -> int:
        if self._paused:
            return self._sim_base
        elapsed = asyncio.get_running_loop().time() - self._wall_base
        return self._sim_base + round(elapsed * self._speed * US)

    async def start(self) -> None:
        """Listen and start the market."""
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._route,
            compression=None,
            close_timeout=1.0,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._wall_base = asyncio.get_running_loop().time()
        self._market_task = asyncio.create_task(self._run_market(), name="simulate-market")
        log.info("local exchange at %s and %s", self.exchange_url, self.advanced_url)

    async def stop(self) -> None:
        """Stop the market and close every connection."""
        if self._market_task is not None:
            self._market_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._market_task
            self._market_task = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LocalExchange:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run_market(self) -> None:
        while True:
            await asyncio.sleep(STEP_S)
            self._step()

    def _step(self) -> None:
        """Run the market up to the clock and send what it produced."""
        events = self.market.advance(self._sim_now())
        self.rest.history.record(events)
        events = self._dropper.filter(events)
        if events:
            for conn in list(self._connections):
                conn.push(conn.session.on_events(events))

    async def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        """Websocket upgrades to the feeds go on; REST requests get their answer here."""
        if request.path in (EXCHANGE_PATH, ADVANCED_PATH):
            return None
        if self.rest.handles(request.path):
            return await self.rest.respond(request.path, connection.remote_address[0])
        return connection.respond(
            HTTPStatus.NOT_FOUND,
            f"nothing at {request.path}: the feeds are {EXCHANGE_PATH} and {ADVANCED_PATH}, "
            "the REST API /products/{product_id}/trades\n",
        )

    async def _handle(self, ws: ServerConnection) -> None:
        cid = self._next_id
        self._next_id += 1
        rng = random.Random(f"quotewatch-simulate:{self._seed}:connection:{cid}")
        session: _Session
        if ws.request is not None and ws.request.path == ADVANCED_PATH:
            session = AdvancedSession(self.market, rng, self._heartbeat_base)
        else:
            session = ExchangeSession(self.market, rng, self._auth_secret)
        record = ConnectionRecord(cid, session.protocol)
        self.injected.connections[cid] = record
        fault_rng = random.Random(f"quotewatch-simulate:{self._seed}:faults:{cid}")
        faults = ConnectionFaults(
            self.faults, fault_rng, record, session.malformed_frame, session.number
        )
        conn = _Connection(ws, session, faults, self._max_pending)
        self._connections.add(conn)
        tasks = [
            asyncio.create_task(conn.send_loop()),
            asyncio.create_task(self._subscribe_deadline(conn)),
        ]
        if self.faults.disconnect_every is not None:
            tasks.append(asyncio.create_task(self._disconnect_after(conn)))
        try:
            async for message in ws:
                conn.push(session.handle(message))
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(conn)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _subscribe_deadline(self, conn: _Connection) -> None:
        """Close a connection that has not subscribed in time, as Coinbase does after 5 s."""
        await asyncio.sleep(self._subscribe_timeout)
        if not conn.session.subscribed:
            conn.close(1008, "no subscribe message within the subscribe timeout")

    async def _disconnect_after(self, conn: _Connection) -> None:
        """The `disconnect_every` fault: close the connection that many seconds after it opened."""
        assert self.faults.disconnect_every is not None
        await asyncio.sleep(self.faults.disconnect_every)
        self.injected.disconnects += 1
        conn.close(1001, "disconnect_every: injected disconnect")
