"""Render the dashboards and the alert rules from their Python source to the files committed in
`dashboards/`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from quotewatch.config import DEFAULT_JOB, DEFAULT_RUNBOOK_BASE_URL
from quotewatch.grafana import alerts, pipeline_health, system_performance
from quotewatch.grafana.panels import Json

# File name in `dashboards/` -> the function that builds that dashboard.
DASHBOARDS: Mapping[str, Callable[..., Json]] = {
    "data-pipeline-health.json": pipeline_health.build,
    "system-performance.json": system_performance.build,
}


def render(dashboard: Json) -> str:
    """The dashboard as the exact text written to its file (stable, diff-friendly)."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def build_all(
    *, job: str = DEFAULT_JOB, runbook_url: str = DEFAULT_RUNBOOK_BASE_URL
) -> dict[str, Json]:
    """Every dashboard, by file name, for `job`, linking to the runbook at `runbook_url`."""
    return {name: build(job=job, runbook_url=runbook_url) for name, build in DASHBOARDS.items()}


def write(
    out_dir: Path, *, job: str = DEFAULT_JOB, runbook_url: str = DEFAULT_RUNBOOK_BASE_URL
) -> list[Path]:
    """Write every dashboard and the alert rules into `out_dir` (created if missing) and
    return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = {
        name: render(dashboard)
        for name, dashboard in build_all(job=job, runbook_url=runbook_url).items()
    }
    texts[alerts.FILE_NAME] = alerts.render(job=job, runbook_url=runbook_url)
    paths = []
    for name, text in texts.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
