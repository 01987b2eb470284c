"""Trade backfill: the trades a gap says were lost on the websocket, fetched from the REST API.

Coinbase warns that the matches channel can drop messages and points to REST for recovery; the
Exchange serves every trade by id. `Backfiller` runs on its own thread, off the feed loop:

- `request(product, gap)` (from the loop) queues one gap; at most `max_ids` of its newest ids
  are fetched (older ones are counted unrecovered at once), and at most `MAX_QUEUED` gaps wait.
- The thread pages back from the gap's newest id with `after=` (older than) until the page
  reaches the gap's oldest id. Requests are spaced to `RATE_PER_S`, half the public limit.
- A 429 waits for `Retry-After` (or the backoff); a 5xx, a timeout or a refused connection
  backs off exponentially (0.5 s doubling to 8 s, with jitter) and retries, `ATTEMPTS` times
  per page. Then the gap's unfetched ids are counted unrecovered; nothing raises.
- Found trades wait in `take()` for the loop, which passes them to the session (the gap
  tracker then counts them `late`, or drops them when the websocket copy came first) and to
  storage with `source="rest"`.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from qw_metrics import Gap, counted

from quotewatch.config import DEFAULT_BACKFILL_MAX_IDS
from quotewatch.events import Trade
from quotewatch.ingest.rest_trades import Reply, TradesApi
from quotewatch.metrics import BACKFILL_REQUESTS, TRADES_UNRECOVERED

log = logging.getLogger(__name__)

RATE_PER_S = 5.0
ATTEMPTS = 6
BACKOFF_S = 0.5
BACKOFF_MAX_S = 8.0
RETRY_AFTER_MAX_S = 60.0
MAX_QUEUED = 1000


@dataclass(frozen=True, slots=True)
class Unrecovered:
    """Trade ids of `product` that backfill gave up on."""

    product: str
    count: int


@dataclass
class BackfillStats:
    """Per product: ids requested, trades found, ids given up on; requests by outcome."""

    requested: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    unrecovered: dict[str, int] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)  # requests by outcome


class Backfiller:
    """Fetches the trades of trade-id gaps from the REST API on a background thread."""

    def __init__(
        self,
        api: TradesApi,
        *,
        max_ids: int = DEFAULT_BACKFILL_MAX_IDS,
        backoff_s: float = BACKOFF_S,
        clock: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
    ) -> None:
        self.api = api
        self.max_ids = max_ids
        self._backoff_s = backoff_s
        self.stats = BackfillStats()
        self._clock = clock
        self._rng = rng or random.Random()
        self._gaps: queue.Queue[tuple[str, Gap]] = queue.Queue(MAX_QUEUED)
        self._found: deque[tuple[Trade, ...]] = deque()
        self._stop = threading.Event()
        self._next_request = 0.0
        self._lock = threading.Lock()  # the stats are counted on the loop and on the thread
        self._thread = threading.Thread(target=self._run, name="qw-backfill", daemon=True)

    def __repr__(self) -> str:
        return f"Backfiller({self.api!r}, max_ids={self.max_ids})"

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def request(self, product: str, gap: Gap) -> None:
        """Queue `gap` of `product`'s trade ids for fetching (called on the feed loop)."""
        with self._lock:
            self.stats.requested[product] = self.stats.requested.get(product, 0) + gap.missed
        wanted = Gap(max(gap.start, gap.end - self.max_ids + 1), gap.end)
        if wanted.missed < gap.missed:
            self._give_up(product, gap.missed - wanted.missed, "beyond the backfill bound")
        try:
            self._gaps.put_nowait((product, wanted))
        except queue.Full:
            self._give_up(product, wanted.missed, "the backfill queue is full")

    def take(self) -> list[Trade]:
        """The trades found since the last call, oldest page first."""
        out: list[Trade] = []
        while self._found:
            out.extend(self._found.popleft())
        return out

    @property
    def idle(self) -> bool:
        """Whether no gap is waiting or being fetched."""
        return self._gaps.unfinished_tasks == 0

    def close(self, timeout: float) -> None:
        """Stop within `timeout` seconds; gaps not fetched by then count as unrecovered."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        while True:
            try:
                product, gap = self._gaps.get_nowait()
            except queue.Empty:
                break
            self._give_up(product, gap.missed, "shutdown came first")
        self.api.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                product, gap = self._gaps.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self._fetch(product, gap)
            finally:
                self._gaps.task_done()

    def _fetch(self, product: str, gap: Gap) -> None:
        cursor = gap.end + 1
        found = 0
        while cursor > gap.start:
            reply = self._page(product, cursor)
            if reply is None:
                break
            trades = reply.trades
            wanted = tuple(t for t in trades if gap.start <= t.trade_id <= gap.end)
            if wanted:
                self._found.append(tuple(sorted(wanted, key=lambda t: t.trade_id)))
                found += len(wanted)
            if not trades:
                break
            cursor = min(t.trade_id for t in trades)
        with self._lock:
            self.stats.found[product] = self.stats.found.get(product, 0) + found
        if found < gap.missed:
            self._give_up(product, gap.missed - found, "the REST API did not return them")

    def _page(self, product: str, cursor: int) -> Reply | None:
        """One page, retried; None when the attempts ran out or the thread is stopping."""
        delay = self._backoff_s
        for _ in range(ATTEMPTS):
            self._pace()
            if self._stop.is_set():
                return None
            reply = self._get(product, cursor)
            if reply.status == "200":
                return reply
            if reply.status.startswith("4") and reply.status != "429":
                log.warning("backfill of %s: %s %s; giving up", product, reply.status, reply.detail)
                return None
            wait = delay if reply.retry_after is None else reply.retry_after
            wait = min(wait, RETRY_AFTER_MAX_S) * (1.0 + 0.2 * self._rng.random())
            log.info("backfill of %s: %s, retrying in %.1f s", product, reply.status, wait)
            if self._stop.wait(wait):
                return None
            delay = min(delay * 2, BACKOFF_MAX_S)
        log.warning("backfill of %s: no answer after %d attempts; giving up", product, ATTEMPTS)
        return None

    def _pace(self) -> None:
        now = time.monotonic()
        if now < self._next_request:
            self._stop.wait(self._next_request - now)
        self._next_request = max(now, self._next_request) + 1.0 / RATE_PER_S

    @counted(BACKFILL_REQUESTS, labels_from_result=lambda reply: {"status": reply.status})
    def _get(self, product: str, cursor: int) -> Reply:
        """One request: the page older than `cursor`."""
        reply = self.api.get(product, cursor, self._clock() // 1000)
        self.stats.statuses[reply.status] += 1
        return reply

    @counted(
        TRADES_UNRECOVERED,
        amount=lambda r: r.count,
        labels_from_result=lambda r: {"product": r.product},
    )
    def _give_up(self, product: str, count: int, why: str) -> Unrecovered:
        """Count `count` of `product`'s missing trade ids as unrecovered."""
        with self._lock:
            self.stats.unrecovered[product] = self.stats.unrecovered.get(product, 0) + count
        log.warning("backfill of %s: %d trade(s) unrecovered: %s", product, count, why)
        return Unrecovered(product, count)
