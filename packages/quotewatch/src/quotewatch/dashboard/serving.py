"""Serves the dashboard with waitress: the Dash pages, `/metrics`, `/health` and `/ready`.

`serve()` runs waitress in a background thread and returns a handle with `stop()`; the pipeline
runs one of these per process. It binds 127.0.0.1 unless told otherwise (`0.0.0.0` in a
container).
"""

from __future__ import annotations

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
from quotewatch.probes import StorageOpen, liveness, readiness
from quotewatch.state import StateStore

log = logging.getLogger(__name__)


def wsgi_app(
    store: StateStore,
    registry: Registry = DEFAULT_REGISTRY,
    options: DashboardOptions | None = None,
    *,
    clock: Callable[[], float] = time.time,
    storage_open: StorageOpen = None,
) -> tuple[Flask, Dashboard]:
    """The Flask app serving the dashboard, `/metrics`, `/health` and `/ready`, and its
    Dashboard (see `quotewatch.probes` for the two checks).

    The caller starts and stops `dashboard.sampler`; `serve()` does both.
    """
    options = options or DashboardOptions()
    dashboard = build_app(store, registry, options, clock=clock)
    server: Flask = dashboard.app.server

    def metrics() -> Response:
        content_type, body = exposition(registry)
        return Response(body, content_type=content_type)

    def health() -> Response:
        status, body = liveness(store.current(), clock(), options.stale_after)
        return Response(body, status=status, content_type="application/json")

    def ready() -> Response:
        status, body = readiness(store.current(), storage_open)
        return Response(body, status=status, content_type="application/json")

    server.add_url_rule("/metrics", "qw_metrics", metrics)
    server.add_url_rule("/health", "qw_health", health)
    server.add_url_rule("/ready", "qw_ready", ready)
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
    storage_open: StorageOpen = None,
) -> DashboardServer:
    """Serve the dashboard for `store` on `host:port` (0 = any free port) in a daemon thread.

    Also serves `/metrics` (Prometheus text of `registry`), `/health` and `/ready` (see
    `quotewatch.probes`). Returns a handle; call `stop()` to shut down.
    """
    app, dashboard = wsgi_app(store, registry, options, clock=clock, storage_open=storage_open)
    server = create_server(app, host=host, port=port, threads=threads, ident="quotewatch")
    bound_port = int(server.effective_port)
    thread = threading.Thread(target=server.run, name="qw-dashboard", daemon=True)
    dashboard.sampler.start()
    thread.start()
    log.info("dashboard serving on http://%s:%d", host, bound_port)
    return DashboardServer(host, bound_port, dashboard, server, thread)
