"""`MetricsServer`: `/metrics`, `/health` and `/ready` over plain HTTP, for runs without the
dashboard (which serves the same three routes itself).

It runs on a daemon thread and reads only the state store's current snapshot and the exposition
of the default registry, so a slow scrape never reaches the feed loop.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from quotewatch.metrics import exposition
from quotewatch.probes import StorageOpen, liveness, readiness
from quotewatch.state import StateStore

log = logging.getLogger(__name__)


class _MetricsHandler(BaseHTTPRequestHandler):
    server: _ProbedServer

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/metrics":
            content_type, body = exposition()
            self._send(200, content_type, body)
        elif path == "/health":
            status, text = liveness(self.server.store.current(), time.time())
            self._send(status, "application/json", text.encode())
        elif path == "/ready":
            status, text = readiness(self.server.store.current(), self.server.storage_open)
            self._send(status, "application/json", text.encode())
        else:
            self.send_error(404, "only /metrics, /health and /ready are served here")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: scrapes are routine
        log.debug(format, *args)


class _ProbedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: StateStore, storage_open: StorageOpen):
        super().__init__(address, _MetricsHandler)
        self.store = store
        self.storage_open = storage_open


class MetricsServer:
    """`/metrics`, `/health` and `/ready` on a daemon thread, for runs without the dashboard."""

    def __init__(
        self, host: str, port: int, store: StateStore, storage_open: StorageOpen = None
    ) -> None:
        self._server = _ProbedServer((host, port), store, storage_open)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="qw-metrics-http", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8050."""
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)
