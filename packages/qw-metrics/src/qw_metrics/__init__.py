"""qw-metrics: decorator-first Prometheus instrumentation with a native remote-write client."""

__version__ = "0.1.0"

__all__ = ["__version__"]
