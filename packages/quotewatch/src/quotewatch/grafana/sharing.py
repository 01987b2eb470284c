"""Copies of the dashboards for external (public) sharing, which cannot use template variables.

Grafana's externally shared dashboards run only the queries stored in the dashboard and do not
support template variables, so the copy fixes the data source, environment and job in every
query (every instance and product) and drops the variables. Grafana's global variables
(`$__rate_interval`, `$__range`) stay. Links to the other dashboard are dropped (a shared
copy's viewers cannot open it); the runbook link stays.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from quotewatch.grafana.panels import DATASOURCE, Json
from quotewatch.grafana.queries import substitute

# Grafana fills these in itself, shared dashboards included.
_GLOBALS = ("__rate_interval", "__interval", "__range")
_PLAIN_VALUE = re.compile(r"[\w.:-]+")


def _fixed_datasources(node: Any, datasource: dict[str, str]) -> None:
    if isinstance(node, dict):
        if node.get("datasource") == DATASOURCE:
            node["datasource"] = dict(datasource)
        for value in node.values():
            _fixed_datasources(value, datasource)
    elif isinstance(node, list):
        for value in node:
            _fixed_datasources(value, datasource)


def for_sharing(dashboard: Json, *, datasource_uid: str, environment: str) -> Json:
    """A copy of `dashboard` reading data source `datasource_uid`, for one `environment`."""
    for name, value in (("data source uid", datasource_uid), ("environment", environment)):
        if not _PLAIN_VALUE.fullmatch(value):
            raise ValueError(
                f"{name} {value!r} must be letters, digits, '_', '.', ':' or '-'; "
                "copy it from the data source's URL in Grafana (Connections > Data sources)"
            )
    shared = copy.deepcopy(dashboard)
    job = next(v["current"]["value"] for v in dashboard["templating"]["list"] if v["name"] == "job")
    values = {
        **{g: f"${g}" for g in _GLOBALS},
        "environment": environment,
        "job": job,
        "instance": ".*",
        "product": ".*",
    }
    for panel in shared["panels"]:
        for target in panel["targets"]:
            target["expr"] = substitute(target["expr"], values)
    _fixed_datasources(shared, {"type": "prometheus", "uid": datasource_uid})
    shared["templating"] = {"list": []}
    shared["links"] = [link for link in dashboard["links"] if not link["url"].startswith("/d/")]
    shared["uid"] = f"{dashboard['uid']}-shared"
    shared["title"] = f"{dashboard['title']} ({environment})"
    shared["tags"] = [*dashboard["tags"], "shared"]
    return shared
