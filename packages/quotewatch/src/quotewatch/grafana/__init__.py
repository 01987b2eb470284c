"""Grafana dashboards as code: built from Python, rendered to JSON, pushed over Grafana's API."""
