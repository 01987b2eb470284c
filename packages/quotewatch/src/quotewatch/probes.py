"""The checks an orchestrator polls: liveness on `/health`, readiness on `/ready`.

Both the dashboard server and the bare `/metrics` server answer them, with the same bodies.
- `/health` is 200 while the feed is fresh (a message processed within `stale_after` s) and
  503 once it is stale: Cloud Run's liveness probe restarts a frozen instance on it.
- `/ready` is 200 only once the feed has connected and storage is open (or is off): Cloud
  Run's startup probe holds traffic and the liveness probe back until then.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from quotewatch.state import Snapshot

STALE_AFTER = 5.0  # seconds without a processed feed message before /health says 503

# Whether storage has opened its catalog and tables; None when the run has no storage.
StorageOpen = Callable[[], bool] | None


def feed_health(snapshot: Snapshot, now: float, stale_after: float) -> tuple[bool, str]:
    """Whether the feed is fresh (a message processed within `stale_after` s), and why not."""
    last = snapshot.feed.last_message_at
    if last is None:
        return False, "no feed message processed yet"
    age = max(0.0, now - last)
    if age > stale_after:
        return False, f"no feed message for {age:.1f} s (limit {stale_after:g} s)"
    return True, f"last feed message {age:.1f} s ago"


def liveness(snapshot: Snapshot, now: float, stale_after: float = STALE_AFTER) -> tuple[int, str]:
    """`/health`: the status code and JSON body."""
    ok, reason = feed_health(snapshot, now, stale_after)
    feed = snapshot.feed
    body = {
        "status": "ok" if ok else "stale",
        "reason": reason,
        "feed": {"source": feed.source, "connected": feed.connected, "messages": feed.messages},
    }
    return (200 if ok else 503), json.dumps(body)


def readiness(snapshot: Snapshot, storage_open: StorageOpen) -> tuple[int, str]:
    """`/ready`: the status code and JSON body."""
    waiting = []
    if not snapshot.feed.connected:
        waiting.append("feed not connected yet")
    storage = "off" if storage_open is None else ("open" if storage_open() else "opening")
    if storage == "opening":
        waiting.append("storage catalog and tables not open yet")
    body = {
        "status": "waiting" if waiting else "ready",
        "reason": "; ".join(waiting) or "feed connected, storage " + storage,
        "feed": {"source": snapshot.feed.source, "connected": snapshot.feed.connected},
        "storage": storage,
    }
    return (503 if waiting else 200), json.dumps(body)
