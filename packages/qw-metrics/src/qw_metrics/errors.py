"""Every error qw_metrics raises on purpose; all are re-exported from `qw_metrics`."""

from __future__ import annotations


class InvalidNameError(ValueError):
    """A metric or label name that Prometheus would reject."""


class LabelError(ValueError):
    """Label names given to a decorator do not match the metric's label names."""


class StageConfigError(ValueError):
    """The stage histogram of a registry was configured twice, differently."""


class MultiprocessModeError(ImportError):
    """qw_metrics was imported with prometheus_client's multiprocess mode on, which it does not
    support."""


class RemoteWriteError(Exception):
    """Base class of every remote-write error."""


class InvalidSeriesError(RemoteWriteError, ValueError):
    """A metric or label name cannot be sent as Prometheus remote write."""


class RemoteWriteConfigError(RemoteWriteError, ValueError):
    """The remote-write client or pusher was configured with a bad value."""
