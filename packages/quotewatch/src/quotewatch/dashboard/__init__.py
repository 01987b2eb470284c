"""quotewatch's Dash dashboard: a live page, a health page, `/metrics` and `/health`.

`serve(store)` runs it under waitress in a background thread and returns a handle with `stop()`.
"""

from quotewatch.dashboard.app import Dashboard, DashboardOptions, build_app
from quotewatch.dashboard.serving import DashboardServer, feed_health, serve, wsgi_app

__all__ = [
    "Dashboard",
    "DashboardOptions",
    "DashboardServer",
    "build_app",
    "feed_health",
    "serve",
    "wsgi_app",
]
