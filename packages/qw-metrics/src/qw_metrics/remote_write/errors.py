"""Typed errors raised by the remote-write client."""

from __future__ import annotations


class RemoteWriteError(Exception):
    """Base class of every remote-write error."""


class InvalidSeriesError(RemoteWriteError, ValueError):
    """A metric or label name cannot be sent as Prometheus remote write."""


class RemoteWriteConfigError(RemoteWriteError, ValueError):
    """The client or pusher was configured with a bad value."""
