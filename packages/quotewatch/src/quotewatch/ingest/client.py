"""The live feed client: one websocket connection at a time, reconnecting forever.

Usage (the pipeline runner)::

    session = FeedSession(Feed.EXCHANGE, products=["BTC-USD"], consumers=[on_event])
    client = FeedClient(session, credentials=ExchangeCredentials.from_env())
    task = asyncio.create_task(client.run())   # cancel the task to stop

``on_event(event, book)`` is called on the feed loop, synchronously, for every event once the
book and gap trackers have applied it, with the book it updated (None for other events); each
event carries ``received_us``, the wall-clock time its frame was received. Consumers must not
block or await: the loop never waits on storage, so hand rows to a non-blocking queue.

Per connection: connect (``max_size`` 16 MiB: an Advanced Trade BTC-USD snapshot is ~5 MB),
subscribe at once (the server drops clients that wait 5 s), then receive. Silence longer than
``silence_timeout`` means a dead connection. On a disconnect, a silence, a slow-consumer notice
or a failed connect the client waits an exponential backoff with jitter (reset once a
connection stayed up ``healthy_after`` seconds), reconnects, resubscribes, and the fresh
snapshots replace the books. Gaps and crossed books make the session queue resyncs, which the
client sends as an unsubscribe + subscribe of the book channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from qw_metrics import counted
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from quotewatch.events import FeedError
from quotewatch.ingest.advanced import AdvancedSubscriptions
from quotewatch.ingest.auth import ExchangeCredentials
from quotewatch.ingest.exchange import ExchangeSubscriptions
from quotewatch.ingest.parser import Feed, Parsed, ParseResult
from quotewatch.ingest.session import FeedSession
from quotewatch.metrics import RECONNECTIONS, start_at_zero

_log = logging.getLogger(__name__)
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Why a connection ends (the `reason` label of the reconnection counter).
RECONNECT_REASONS = ("closed", "silence", "slow_consumer", "connect_failed")
start_at_zero(
    (RECONNECTIONS,),
    ({"feed": feed, "reason": reason} for feed in Feed for reason in RECONNECT_REASONS),
)


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: ``initial * factor**attempt`` capped at ``maximum``, times a random
    factor in [0.5, 1] so many clients do not reconnect in step."""

    initial: float = 0.25
    maximum: float = 30.0
    factor: float = 2.0
    healthy_after: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before reconnect number ``attempt`` (0-based since the last healthy one)."""
        return min(self.maximum, self.initial * self.factor**attempt) * rng.uniform(0.5, 1.0)


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Why the client is reconnecting and how long it waits first."""

    feed: str
    reason: str
    delay: float


def _is_slow_consumer(text: str) -> bool:
    return "slow" in text.lower()


class FeedClient:
    """Keeps one feed connection alive and runs every frame through a `FeedSession`."""

    def __init__(
        self,
        session: FeedSession,
        *,
        url: str | None = None,
        credentials: ExchangeCredentials | None = None,
        silence_timeout: float = 10.0,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not session.products:
            raise ValueError("the session needs at least one product, e.g. BTC-USD")
        if not silence_timeout > 0:
            raise ValueError(f"silence_timeout must be > 0 seconds, got {silence_timeout!r}")
        self.session = session
        self.subscriptions: ExchangeSubscriptions | AdvancedSubscriptions = (
            ExchangeSubscriptions(credentials)
            if session.feed is Feed.EXCHANGE
            else AdvancedSubscriptions()
        )
        self.url = url or self.subscriptions.default_url
        self.silence_timeout = silence_timeout
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self.connected = False
        self.connections = 0
        self.reconnects: list[Reconnect] = []

    def __repr__(self) -> str:
        return f"FeedClient({self.session.feed}, url={self.url!r}, connected={self.connected})"

    async def run(self) -> None:
        """Connect, receive and reconnect until cancelled."""
        attempt = 0
        while True:
            started = time.monotonic()
            reason = await self._connection()
            if time.monotonic() - started >= self.backoff.healthy_after:
                attempt = 0
            reconnect = self._reconnecting(reason, self.backoff.delay(attempt, self._rng))
            attempt += 1
            _log.warning(
                "%s feed: reconnecting in %.2fs (%s)", reconnect.feed, reconnect.delay, reason
            )
            await asyncio.sleep(reconnect.delay)

    @counted(RECONNECTIONS, labels_from_result=lambda r: {"feed": r.feed, "reason": r.reason})
    def _reconnecting(self, reason: str, delay: float) -> Reconnect:
        reconnect = Reconnect(self.session.feed, reason, delay)
        self.reconnects.append(reconnect)
        return reconnect

    async def _connection(self) -> str:
        """One connection from connect to its end; returns why it ended."""
        try:
            async with connect(
                self.url, max_size=MAX_FRAME_BYTES, open_timeout=10, compression=None
            ) as ws:
                self.connected = True
                self.connections += 1
                try:
                    return await self._receive(ws)
                finally:
                    self.connected = False
        except ConnectionClosed as exc:
            closing = exc.rcvd.reason if exc.rcvd is not None else ""
            return "slow_consumer" if _is_slow_consumer(closing) else "closed"
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            _log.warning("%s feed: cannot connect to %s: %s", self.session.feed, self.url, exc)
            return "connect_failed"

    async def _receive(self, ws: ClientConnection) -> str:
        session = self.session
        session.connection_started()
        await self._send(ws, self.subscriptions.subscribe(session.products))
        loop = asyncio.get_running_loop()
        silence = self.silence_timeout
        try:
            async with asyncio.timeout(silence) as deadline:
                while True:
                    frame = await ws.recv()
                    deadline.reschedule(loop.time() + silence)
                    result = session.handle_frame(frame, time.time_ns() // 1000)
                    if session.pending_resyncs:
                        await self._resync(ws)
                    if self._refused(result):
                        return "slow_consumer"
        except TimeoutError:
            return "silence"

    def _refused(self, result: ParseResult) -> bool:
        """Log server errors; True when the server says this client is too slow."""
        if not isinstance(result, Parsed) or result.type != "error":
            return False
        slow = False
        for event in result.events:
            if isinstance(event, FeedError):
                _log.error("%s feed error: %s %s", self.session.feed, event.message, event.reason)
                slow = slow or _is_slow_consumer(f"{event.message} {event.reason}")
        return slow

    async def _resync(self, ws: ClientConnection) -> None:
        products: list[str] = []
        for resync in self.session.pending_resyncs:
            products.extend(p for p in resync.products if p not in products)
        self.session.pending_resyncs.clear()
        _log.warning("%s feed: resubscribing level2 for %s", self.session.feed, products)
        await self._send(ws, self.subscriptions.resync(products))

    async def _send(self, ws: ClientConnection, messages: Sequence[dict[str, object]]) -> None:
        for msg in messages:
            await ws.send(json.dumps(msg))
