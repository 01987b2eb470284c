"""Serves the dashboard with waitress: the Dash pages, `/metrics` and `/health` on one server.

`serve()` runs waitress in a background thread and returns a handle with `stop()`; the pipeline
runs one of these per process. It binds 127.0.0.1 unless told otherwise (`0.0.0.0` in a
container).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response
from waitress.server import create_server

from quotewatch.dashboard.app import Dashboard, DashboardOptions, build_app
from quotewatch.metrics import DEFAULT_REGISTRY, Registry, exposition
from quotewatch.state import Snapshot, StateStore

log = logging.getLogger(__name__)


def feed_health(snapshot: Snapshot, now: float, stale_after: float) -> tuple[bool, str]:
    """Whether the feed is fresh (a message processed within `stale_after` s), and why not."""
    last = snapshot.feed.last_message_at
    if last is None:
        return False, "no feed message processed yet"
    age = max(0.0, now - last)
    if age > stale_after:
        return False, f"no feed message for {age:.1f} s (limit {stale_after:g} s)"
    return True, f"last feed message {age:.1f} s ago"


def wsgi_app(
    store: StateStore,
    registry: Registry = DEFAULT_REGISTRY,
    options: DashboardOptions | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> tuple[Flask, Dashboard]:
    """The Flask app serving the dashboard, `/metrics` and `/health`, and its Dashboard.

    The caller starts and stops `dashboard.sampler`; `serve()` does both.
    """
    options = options or DashboardOptions()
    dashboard = build_app(store, registry, options, clock=clock)
    server: Flask = dashboard.app.server

    def metrics() -> Response:
        content_type, body = exposition(registry)
        return Response(body, content_type=content_type)

    def health() -> Response:
        snapshot = store.current()
        ok, reason = feed_health(snapshot, clock(), options.stale_after)
        feed = snapshot.feed
        body = {
            "status": "ok" if ok else "stale",
            "reason": reason,
            "feed": {"source": feed.source, "connected": feed.connected, "messages": feed.messages},
        }
        return Response(
            json.dumps(body), status=200 if ok else 503, content_type="application/json"
        )

    server.add_url_rule("/metrics", "qw_metrics", metrics)
    server.add_url_rule("/health", "qw_health", health)
    return server, dashboard


@dataclass
class DashboardServer:
    """A running dashboard server; `stop()` shuts it down."""

    host: str
    port: int
    dashboard: Dashboard
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        """Base URL of the dashboard, e.g. http://127.0.0.1:8050."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and sampling; waits up to `timeout` seconds for the server thread."""
        self.dashboard.sampler.stop(timeout)
        server = self._server
        # Close the sockets from waitress's own loop thread; its loop ends when none are left.
        server.trigger.pull_trigger(lambda: _close_all(server))
        self._thread.join(timeout)
        server.task_dispatcher.shutdown(timeout=timeout)
        if self._thread.is_alive():
            log.warning("dashboard server thread did not stop within %.1f s", timeout)


def _close_all(server: Any) -> None:
    for channel in list(server._map.values()):  # waitress keeps no public handle on its sockets
        channel.close()


def serve(
    store: StateStore,
    registry: Registry = DEFAULT_REGISTRY,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    options: DashboardOptions | None = None,
    threads: int = 4,
    clock: Callable[[], float] = time.time,
) -> DashboardServer:
    """Serve the dashboard for `store` on `host:port` (0 = any free port) in a daemon thread.

    Also serves `/metrics` (Prometheus text of `registry`) and `/health` (200 while the feed is
    fresh, 503 with the reason otherwise). Returns a handle; call `stop()` to shut down.
    """
    app, dashboard = wsgi_app(store, registry, options, clock=clock)
    server = create_server(app, host=host, port=port, threads=threads, ident="quotewatch")
    bound_port = int(server.effective_port)
    thread = threading.Thread(target=server.run, name="qw-dashboard", daemon=True)
    dashboard.sampler.start()
    thread.start()
    log.info("dashboard serving on http://%s:%d", host, bound_port)
    return DashboardServer(host, bound_port, dashboard, server, thread)
