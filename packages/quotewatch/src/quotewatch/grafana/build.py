"""Render the dashboards from their Python source to the JSON files committed in `dashboards/`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from quotewatch.grafana import pipeline_health, system_performance
from quotewatch.grafana.panels import Json

# File name in `dashboards/` -> the function that builds that dashboard.
DASHBOARDS: Mapping[str, Callable[[], Json]] = {
    "data-pipeline-health.json": pipeline_health.build,
    "system-performance.json": system_performance.build,
}


def render(dashboard: Json) -> str:
    """The dashboard as the exact text written to its file (stable, diff-friendly)."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def build_all() -> dict[str, Json]:
    """Every dashboard, by file name."""
    return {name: build() for name, build in DASHBOARDS.items()}


def write(out_dir: Path) -> list[Path]:
    """Write every dashboard into `out_dir` (created if missing) and return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, dashboard in build_all().items():
        path = out_dir / name
        path.write_text(render(dashboard), encoding="utf-8")
        paths.append(path)
    return paths
