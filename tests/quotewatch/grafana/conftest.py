"""A stand-in for Grafana's HTTP API (no real Grafana can run here) that checks request shapes."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from quotewatch.cli import dashboards

TOKEN = "glsa_test-token-0123456789abcdef"
DASHBOARD_KEYS = {"dashboard", "folderUid", "overwrite", "message"}


def run_cli(argv: list[str]) -> int:
    """Run `quotewatch <argv>` with only the dashboards command (the others import a lot)."""
    parser = argparse.ArgumentParser(prog="quotewatch")
    dashboards.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


@dataclass
class FakeGrafana:
    """Records every request; `problems` lists each request whose shape was wrong."""

    url: str = ""
    folders: list[dict[str, Any]] = field(
        default_factory=lambda: [{"id": 1, "uid": "existing-uid", "title": "Existing"}]
    )
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fail_with: int | None = None  # answer the next dashboard upload with this status

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        self.requests.append((method, path))
        auth = headers.get("Authorization", "")
        if auth != f"Bearer {TOKEN}":
            return 401, {"message": "invalid API key"}
        if method == "GET" and path == "/api/folders?limit=1000":
            return 200, self.folders
        if method != "POST":
            return 404, {"message": "not found"}
        if headers.get("Content-Type") != "application/json":
            self.problems.append(f"{path}: content-type {headers.get('Content-Type')!r}")
            return 415, {"message": "needs JSON"}
        payload = json.loads(body)
        if path == "/api/folders":
            return self._create_folder(payload)
        if path == "/api/dashboards/db":
            return self._save_dashboard(payload, auth)
        return 404, {"message": "not found"}

    def _create_folder(self, payload: dict[str, Any]) -> tuple[int, Any]:
        if set(payload) != {"title"} or not payload["title"]:
            self.problems.append(f"folder create body {payload!r}")
            return 400, {"message": "bad folder"}
        folder = {
            "id": len(self.folders) + 1,
            "uid": f"new-{len(self.folders)}",
            "title": payload["title"],
        }
        self.folders.append(folder)
        return 200, folder

    def _save_dashboard(self, payload: dict[str, Any], auth: str) -> tuple[int, Any]:
        if self.fail_with is not None:
            status, self.fail_with = self.fail_with, None
            # A hostile or buggy server echoing the credentials back: must be redacted.
            return status, {"message": f"database locked while handling {auth}"}
        dashboard = payload.get("dashboard", {})
        checks = {
            "unexpected keys": not set(payload) <= DASHBOARD_KEYS,
            "overwrite is not true": payload.get("overwrite") is not True,
            "no message": not payload.get("message"),
            "dashboard has an id": "id" in dashboard,
            "dashboard has no uid/title": not (dashboard.get("uid") and dashboard.get("title")),
            "unknown folder": "folderUid" in payload
            and payload["folderUid"] not in {f["uid"] for f in self.folders},
        }
        wrong = [name for name, failed in checks.items() if failed]
        if wrong:
            self.problems.append(f"dashboard upload: {', '.join(wrong)}")
            return 400, {"message": "bad dashboard"}
        uid = dashboard["uid"]
        version = self.dashboards.get(uid, {}).get("version", 0) + 1
        self.dashboards[uid] = {**payload, "version": version}
        return 200, {
            "id": len(self.dashboards),
            "uid": uid,
            "url": f"/d/{uid}/slug",
            "status": "success",
            "version": version,
        }


@pytest.fixture
def fake_grafana() -> Iterator[FakeGrafana]:
    """A fake Grafana API on a free loopback port."""
    grafana = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, answer = grafana.handle(
                self.command, self.path, self.headers, self.rfile.read(length)
            )
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    grafana.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield grafana
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
