"""Upload dashboards to Grafana (Cloud or self-hosted) through its HTTP API.

`POST /api/dashboards/db` with `overwrite: true` creates or replaces each dashboard by its uid;
a folder given by title is looked up (`GET /api/folders`) and created when missing
(`POST /api/folders`). The token is sent only in the Authorization header: it never appears in
an error message or a log line.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from quotewatch.grafana.panels import Json

log = logging.getLogger(__name__)

_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: safe in a header


class ProvisionError(RuntimeError):
    """Grafana could not be reached or refused a request; the message says which and why."""


class GrafanaAuthError(ProvisionError):
    """Grafana rejected the token (HTTP 401 or 403)."""


@dataclass(frozen=True)
class PushedDashboard:
    """One dashboard as Grafana stored it."""

    uid: str
    title: str
    url: str
    version: int


def _base_url(grafana_url: str) -> str:
    parts = urlsplit(grafana_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProvisionError(
            f"--grafana-url {grafana_url!r} is not an http(s) URL; "
            "use e.g. https://your-stack.grafana.net"
        )
    if parts.username or parts.password:
        raise ProvisionError(
            "--grafana-url must not contain credentials; pass the token with --token "
            "or GRAFANA_DASHBOARD_TOKEN"
        )
    return grafana_url.rstrip("/")


def _check_token(token: str) -> None:
    if not _TOKEN_CHARS.fullmatch(token):
        raise ProvisionError(
            "the Grafana token is empty or contains spaces or non-ASCII characters; "
            "copy the service-account token again (it starts with glsa_)"
        )


class _Grafana:
    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        self._base_url = base_url
        self._token = token
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            detail = str(exc).replace(self._token, "<token>")
            raise ProvisionError(
                f"cannot reach Grafana at {self._base_url} ({method} {path}): {detail}"
            ) from None
        if response.status_code in (401, 403):
            raise GrafanaAuthError(
                f"Grafana at {self._base_url} rejected the token for {method} {path} "
                f"(HTTP {response.status_code}): use a service-account token with the Editor "
                "role (or dashboards:write and folders:create), via --token or "
                "GRAFANA_DASHBOARD_TOKEN"
            )
        if not response.is_success:
            raise ProvisionError(
                f"Grafana at {self._base_url} answered {method} {path} with HTTP "
                f"{response.status_code}: {self._reason(response)}"
            )
        try:
            return response.json()
        except ValueError:
            raise ProvisionError(
                f"Grafana at {self._base_url} answered {method} {path} with a body that is not "
                "JSON; is --grafana-url the Grafana root URL?"
            ) from None

    def _reason(self, response: httpx.Response) -> str:
        try:
            reason = str(response.json().get("message", ""))
        except (ValueError, AttributeError):
            reason = response.text[:200]
        return reason.replace(self._token, "<token>") or response.reason_phrase


def _folder_uid(grafana: _Grafana, folder: str) -> str:
    """The uid of the folder whose title (or uid) is `folder`, creating it when missing."""
    for existing in grafana.request("GET", "/api/folders?limit=1000"):
        if folder in (existing.get("title"), existing.get("uid")):
            return str(existing["uid"])
    created = grafana.request("POST", "/api/folders", {"title": folder})
    log.info("created Grafana folder %r", folder)
    return str(created["uid"])


def push_dashboards(
    grafana_url: str,
    token: str,
    dashboards: Iterable[Json],
    *,
    folder: str | None = None,
    timeout: float = 30.0,
) -> list[PushedDashboard]:
    """Create or overwrite each dashboard in Grafana, in `folder` (title or uid) if given."""
    base_url = _base_url(grafana_url)
    _check_token(token)
    message = f"quotewatch {importlib.metadata.version('quotewatch')}: dashboards push"
    grafana = _Grafana(base_url, token, timeout)
    try:
        target: dict[str, str] = {}
        if folder:
            target["folderUid"] = _folder_uid(grafana, folder)
        pushed = []
        for dashboard in dashboards:
            body = {"dashboard": dashboard, **target, "overwrite": True, "message": message}
            answer = grafana.request("POST", "/api/dashboards/db", body)
            result = PushedDashboard(
                uid=str(answer.get("uid", dashboard["uid"])),
                title=str(dashboard["title"]),
                url=base_url + str(answer.get("url", "")),
                version=int(answer.get("version", 0)),
            )
            log.info(
                "pushed dashboard %r (version %d): %s", result.title, result.version, result.url
            )
            pushed.append(result)
        return pushed
    finally:
        grafana.close()
