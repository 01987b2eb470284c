"""quotewatch's Dash dashboard: a live page, a health page, `/metrics`, `/health` and `/ready`.

`serve(store)` runs it under waitress in a background thread and returns a handle with `stop()`.
"""

from quotewatch.dashboard.app import Dashboard, DashboardOptions, build_app
from quotewatch.dashboard.serving import DashboardServer, serve, wsgi_app

__all__ = [
    "Dashboard",
    "DashboardOptions",
    "DashboardServer",
    "build_app",
    "serve",
    "wsgi_app",
]
