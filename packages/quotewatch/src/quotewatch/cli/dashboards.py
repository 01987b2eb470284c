"""`quotewatch dashboards build|push`: render the Grafana dashboards, or upload them to Grafana."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from quotewatch.config import ConfigError, Settings
from quotewatch.grafana import build
from quotewatch.grafana.provision import ProvisionError, push_dashboards
from quotewatch.grafana.sharing import for_sharing

TOKEN_ENV = "GRAFANA_DASHBOARD_TOKEN"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `dashboards` command with its `build` and `push` actions."""
    parser = subparsers.add_parser(
        "dashboards",
        help="build the Grafana dashboards' JSON and the alert rules, or push the dashboards",
        description="The Grafana dashboards and the alert rules are Python code "
        "(quotewatch.grafana). `build` writes their files; `push` uploads the dashboards "
        "through Grafana's HTTP API. Both read QW_JOB (the job the queries select) and "
        "QW_RUNBOOK_BASE_URL (where runbook links point).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    build_parser = actions.add_parser(
        "build",
        help="write the dashboard JSON files and alerts.yml",
        description="Write every dashboard's JSON and the alert rules.",
    )
    build_parser.add_argument(
        "--out",
        type=Path,
        default=Path("dashboards"),
        help="directory to write into (default: ./dashboards)",
    )
    build_parser.set_defaults(handler=_build)

    push_parser = actions.add_parser(
        "push",
        help="create or overwrite the dashboards in Grafana",
        description="Upload every dashboard with POST /api/dashboards/db (overwrite on).",
    )
    push_parser.add_argument(
        "--grafana-url", required=True, help="Grafana root URL, e.g. https://your-stack.grafana.net"
    )
    push_parser.add_argument(
        "--token",
        default=None,
        help=f"service-account token (Editor role); prefer the {TOKEN_ENV} environment "
        "variable, which keeps it out of the process list",
    )
    push_parser.add_argument(
        "--folder", default=None, help="folder title or uid; created when missing"
    )
    push_parser.add_argument(
        "--shared-datasource",
        metavar="UID",
        default=None,
        help="push copies for external (public) sharing instead: no template variables, every "
        "query reads this Prometheus data source uid",
    )
    push_parser.add_argument(
        "--environment",
        default="production",
        help="with --shared-datasource: the environment the copies show (default: production)",
    )
    push_parser.set_defaults(handler=_push)


def _settings() -> Settings | None:
    try:
        return Settings.resolve()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _build(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return 2
    for path in build.write(args.out, job=settings.job, runbook_url=settings.runbook_base_url):
        print(path)
    return 0


def _push(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        print(f"error: no Grafana token: pass --token or set {TOKEN_ENV}", file=sys.stderr)
        return 2
    settings = _settings()
    if settings is None:
        return 2
    built = build.build_all(job=settings.job, runbook_url=settings.runbook_base_url)
    dashboards = list(built.values())
    try:
        if args.shared_datasource:
            dashboards = [
                for_sharing(d, datasource_uid=args.shared_datasource, environment=args.environment)
                for d in dashboards
            ]
        pushed = push_dashboards(args.grafana_url, token, dashboards, folder=args.folder)
    except (ProvisionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for dashboard in pushed:
        print(f"{dashboard.title}: {dashboard.url} (version {dashboard.version})")
    return 0
