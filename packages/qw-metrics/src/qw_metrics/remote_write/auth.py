"""Credentials for remote-write receivers; their secrets never show in reprs or errors."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Protocol

from qw_metrics.errors import RemoteWriteConfigError


class Auth(Protocol):
    """Anything that turns credentials into request headers."""

    def headers(self) -> dict[str, str]:
        """The headers to send with every request."""
        ...


def _check(what: str, value: str) -> None:
    # Only `what` goes into the message: the value may be a secret.
    if not isinstance(value, str) or not value:
        raise RemoteWriteConfigError(f"{what} is empty or not a str; pass a non-empty str")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise RemoteWriteConfigError(
            f"{what} contains a control character (often a trailing newline from a file); strip it"
        )


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP basic auth. Grafana Cloud: username = metrics instance ID, password = access-policy
    token with the ``metrics:write`` scope."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        _check("basic-auth username", self.username)
        _check("basic-auth password", self.password)
        if ":" in self.username:
            raise RemoteWriteConfigError("basic-auth username contains ':'; remove it")

    def headers(self) -> dict[str, str]:
        """``Authorization: Basic ...``."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=<redacted>)"


@dataclass(frozen=True, slots=True)
class BearerAuth:
    """``Authorization: Bearer <token>``."""

    token: str = field(repr=False)

    def __post_init__(self) -> None:
        _check("bearer token", self.token)

    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer ...``."""
        return {"Authorization": f"Bearer {self.token}"}

    def __repr__(self) -> str:
        return "BearerAuth(token=<redacted>)"
