"""The feed's part of the run summary: what a `FeedSession` saw, as a JSON-ready dict
(`quotewatch.app.summary` adds the pipeline's and storage's parts).

Keys: ``feed``; ``messages`` (frames by message type); ``invalid`` (by reason); ``products``
(product -> ``trades``, ``trade_gaps`` and ``trades_missed`` (Exchange ``trade_id`` gaps plus
the tail losses heartbeats proved, itemised as ``heartbeat_gaps`` / ``heartbeat_missed``),
``trades_backfilled`` (missed trades the REST API supplied) and ``trades_unrecovered`` (missed
trades never seen at all: neither late on the websocket nor backfilled),
``duplicate_trades`` (repeated ids, passed to no consumer), ``book_updates``,
``crossed_books``, ``resyncs``); ``sequence`` (Advanced Trade ``sequence_num`` ``gaps`` /
``missed`` over all connections, and ``duplicate_frames`` skipped whole); ``duration_s`` (wall-clock
seconds of the run) and ``messages_per_s`` (frames per second of it).
"""

from __future__ import annotations

from typing import Any

from quotewatch.ingest.session import FeedSession


def feed_summary(session: FeedSession, duration_s: float) -> dict[str, Any]:
    """Summarise ``session`` after a run of ``duration_s`` seconds."""
    stats = session.stats
    trades = session.trades
    products: dict[str, dict[str, int]] = {}
    for product in sorted(set(stats.products) | set(session.books)):
        p = stats.products.get(product)
        tracked = trades.tracker.stats(product)
        beats = trades.heartbeat_gaps.get(product, [])
        heartbeat_missed = sum(gap.missed for gap in beats)
        products[product] = {
            "trades": p.trades if p else 0,
            "trade_gaps": tracked.gaps + len(beats),
            "trades_missed": tracked.missed + heartbeat_missed,
            "heartbeat_gaps": len(beats),
            "heartbeat_missed": heartbeat_missed,
            "trades_backfilled": p.backfilled if p else 0,
            # Missed and never seen by any path: not late on the websocket, not backfilled.
            "trades_unrecovered": tracked.missed + heartbeat_missed - tracked.late,
            "duplicate_trades": p.duplicate_trades if p else 0,
            "book_updates": p.book_updates if p else 0,
            "crossed_books": p.crossed_books if p else 0,
            "resyncs": p.resyncs if p else 0,
        }
    sequence = session.sequence.tracker.totals()
    return {
        "feed": str(session.feed),
        "messages": dict(sorted(stats.messages.items())),
        "invalid": {str(k): v for k, v in sorted(stats.invalid.items())},
        "products": products,
        "sequence": {
            "gaps": sequence.gaps,
            "missed": sequence.missed,
            "duplicate_frames": stats.duplicate_frames,
        },
        "duration_s": round(duration_s, 6),
        "messages_per_s": round(stats.frames / duration_s, 3) if duration_s > 0 else 0.0,
    }
