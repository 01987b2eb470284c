"""Coinbase Exchange API credentials and the signed subscribe fields that level2 requires.

The signature is HMAC-SHA256 of ``timestamp + "GET" + "/users/self/verify"`` keyed with the
base64-decoded secret, base64-encoded. Credentials never appear in reprs or logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Mapping

from quotewatch.config import ConfigError

ENV_KEY = "COINBASE_API_KEY"
ENV_SECRET = "COINBASE_API_SECRET"
ENV_PASSPHRASE = "COINBASE_API_PASSPHRASE"


class ExchangeCredentials:
    """An API key, its base64 secret and passphrase; the repr shows none of them."""

    __slots__ = ("_key", "_passphrase", "_secret")

    def __init__(self, key: str, secret: str, passphrase: str) -> None:
        try:
            self._secret = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                f"{ENV_SECRET} is not valid base64; paste the secret exactly as Coinbase shows it"
            ) from None
        self._key = key
        self._passphrase = passphrase

    def __repr__(self) -> str:
        return "ExchangeCredentials(<redacted>)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExchangeCredentials | None:
        """Credentials from the three environment variables; None when none is set."""
        environ = os.environ if environ is None else environ
        names = (ENV_KEY, ENV_SECRET, ENV_PASSPHRASE)
        values = [environ.get(name, "") for name in names]
        if not any(values):
            return None
        missing = [name for name, value in zip(names, values, strict=True) if not value]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set: set all of {', '.join(names)} to subscribe to "
                "level2, or none of them to use level2_batch"
            )
        return cls(*values)

    def sign(self, timestamp: str) -> str:
        """The base64 HMAC-SHA256 signature of ``timestamp + "GET/users/self/verify"``."""
        message = f"{timestamp}GET/users/self/verify".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")

    def subscribe_fields(self, now: float | None = None) -> dict[str, str]:
        """The ``signature``, ``key``, ``passphrase`` and ``timestamp`` of a subscribe message."""
        timestamp = str(int(time.time() if now is None else now))
        return {
            "signature": self.sign(timestamp),
            "key": self._key,
            "passphrase": self._passphrase,
            "timestamp": timestamp,
        }
