"""Running the live feed client against the local exchange for a while, in tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from quotewatch.ingest.client import Backoff, FeedClient
from quotewatch.ingest.parser import Feed
from quotewatch.ingest.session import Consumer, FeedSession, FrameTap
from quotewatch.simulate.server import LocalExchange

FAST_BACKOFF = Backoff(initial=0.1, maximum=0.5, healthy_after=5.0)


async def run_client(
    ex: LocalExchange,
    feed: Feed,
    products: Sequence[str],
    seconds: float,
    *,
    consumers: Sequence[Consumer] = (),
    taps: Sequence[FrameTap] = (),
    silence_timeout: float = 5.0,
    drain: float = 0.3,
    until: Callable[[], bool] = lambda: True,
    at_most: float = 15.0,
) -> tuple[FeedSession, FeedClient]:
    """Run a client for ``seconds`` and then until ``until()`` holds (``at_most`` in all), then
    pause the market, let the queues drain and stop it.

    ``until`` keeps a test's "enough faults were injected" precondition from depending on how
    many frames a busy machine got through in a fixed time.
    """
    session = FeedSession(feed, products=products, consumers=consumers, taps=taps)
    url = ex.exchange_url if feed is Feed.EXCHANGE else ex.advanced_url
    client = FeedClient(session, url=url, silence_timeout=silence_timeout, backoff=FAST_BACKOFF)
    task = asyncio.create_task(client.run())
    await asyncio.sleep(seconds)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + max(0.0, at_most - seconds)
    while not until() and loop.time() < give_up:
        await asyncio.sleep(0.1)
    ex.pause()
    await asyncio.sleep(drain)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return session, client


def runs(ids: Sequence[int]) -> int:
    """Number of maximal runs of consecutive integers in ``ids``."""
    distinct = set(ids)
    return sum(1 for i in distinct if i - 1 not in distinct)
