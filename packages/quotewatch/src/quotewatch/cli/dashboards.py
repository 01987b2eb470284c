"""`quotewatch dashboards build|push`: render the Grafana dashboards, or upload them to Grafana."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from quotewatch.grafana import build
from quotewatch.grafana.provision import ProvisionError, push_dashboards
from quotewatch.grafana.sharing import for_sharing

TOKEN_ENV = "GRAFANA_DASHBOARD_TOKEN"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `dashboards` command with its `build` and `push` actions."""
    parser = subparsers.add_parser(
        "dashboards",
        help="build the Grafana dashboards' JSON or push them to Grafana",
        description="The Grafana dashboards are Python code (quotewatch.grafana). `build` "
        "writes their JSON files; `push` uploads them through Grafana's HTTP API.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    build_parser = actions.add_parser(
        "build", help="write the dashboard JSON files", description="Write every dashboard's JSON."
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


def _build(args: argparse.Namespace) -> int:
    for path in build.write(args.out):
        print(path)
    return 0


def _push(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        print(f"error: no Grafana token: pass --token or set {TOKEN_ENV}", file=sys.stderr)
        return 2
    dashboards = list(build.build_all().values())
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
