"""quotewatch's settings, in one place: a flag beats an environment variable beats the default.

Each setting is declared once below with its flag, its environment variable and its default;
the README's configuration table lists the same.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names it and the fix."""


def _positive_float(text: str) -> float:
    value = float(text)
    # inf passed a bare `> 0` and stopped the writer's timer: nothing committed until exit.
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"must be a finite number > 0, got {text!r}")
    return value


# Below a second a push interval only loads the receiver, and with it down the backlog grows.
MIN_PUSH_INTERVAL = 1.0


def _push_interval(text: str) -> float:
    value = _positive_float(text)
    if value < MIN_PUSH_INTERVAL:
        raise ValueError(f"must be at least {MIN_PUSH_INTERVAL:g} s, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be >= 1, got {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"must be a TCP port from 0 (any free) to 65535, got {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be >= 0, got {text!r}")
    return value


def parse_products(text: str) -> tuple[str, ...]:
    """Comma-separated product ids, upper-cased; ValueError if there are none."""
    products = tuple(p.strip().upper() for p in text.split(",") if p.strip())
    if not products:
        raise ValueError("needs at least one product, e.g. BTC-USD,ETH-USD")
    return products


def _feed(text: str) -> str:
    if text not in ("exchange", "advanced"):
        raise ValueError(f"must be 'exchange' or 'advanced', got {text!r}")
    return text


def _setting(flag: str | None, env: str | tuple[str, ...] | None, default: Any,
             parse: Callable[[str], Any] = str, secret: bool = False) -> Any:  # fmt: skip
    """A field read from `flag`, else from the first of the `env` names that is set."""
    names = (env,) if isinstance(env, str) else (env or ())
    return field(
        default=default,
        repr=not secret,
        metadata={"flag": flag, "env": names, "parse": parse},
    )


# Cloud Run sets K_SERVICE in every container it runs, and PORT to the port it routes to.
CLOUD_RUN_ENV = "K_SERVICE"
DEFAULT_JOB = "quotewatch"
# A gap of 10,000 trades is minutes of BTC-USD at its busiest: 10 REST pages, about 2 s.
DEFAULT_BACKFILL_MAX_IDS = 10_000
# Where alerts and dashboards link to for what to do: the runbook in the repository.
DEFAULT_RUNBOOK_BASE_URL = "https://github.com/quotewatch/quotewatch/blob/main/docs/runbook.md"


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one quotewatch run."""

    data_dir: Path = _setting("--data-dir", "QW_DATA_DIR", Path(".quotewatch"), Path)
    catalog_uri: str | None = _setting("--catalog-uri", "QW_CATALOG_URI", None)
    warehouse: str | None = _setting("--warehouse", "QW_WAREHOUSE", None)
    flush_interval: float = _setting("--flush-interval", "QW_FLUSH_INTERVAL", 10.0, _positive_float)
    flush_rows: int = _setting("--flush-rows", "QW_FLUSH_ROWS", 5_000, _positive_int)
    feed: str = _setting("--feed", "QW_FEED", "exchange", _feed)
    products: tuple[str, ...] = _setting("--products", "QW_PRODUCTS", ("BTC-USD",), parse_products)
    # Default 127.0.0.1; 0.0.0.0 on Cloud Run, whose router reaches the container from outside.
    host: str = _setting("--host", "QW_HOST", "127.0.0.1")
    port: int = _setting("--port", ("QW_PORT", "PORT"), 8050, _port)
    push_url: str | None = _setting("--push-url", "GRAFANA_PUSH_URL", None)
    push_interval: float = _setting("--push-interval", "QW_PUSH_INTERVAL", 15.0, _push_interval)
    grafana_user: str | None = _setting(None, "GRAFANA_USER", None)
    grafana_api_key: str | None = _setting(None, "GRAFANA_API_KEY", None, secret=True)
    environment: str = _setting(None, "ENVIRONMENT", "local")
    # The `job` label on pushed series; dashboards and alerts select quotewatch's by it.
    job: str = _setting(None, "QW_JOB", DEFAULT_JOB)
    # Alerts' runbook_url and the dashboards' runbook link: this URL, plus a section anchor.
    runbook_base_url: str = _setting(None, "QW_RUNBOOK_BASE_URL", DEFAULT_RUNBOOK_BASE_URL)
    # The labeler's move threshold (a fraction; 0.0001 = 0.01%); None: the command's default.
    label_threshold: float | None = _setting(
        "--label-threshold", "QW_LABEL_THRESHOLD", None, _positive_float
    )
    # How far beyond the newest trade_id / sequence_num an id may jump before it is held as a
    # suspect (see quotewatch.ingest.gaps for why 1,000,000).
    max_id_jump: int = _setting("--max-id-jump", "QW_MAX_ID_JUMP", 1_000_000, _positive_int)
    # Trade backfill (Exchange feed): the REST API's base URL (None: production, or the local
    # exchange in `demo`), and how many missing ids of one gap it fetches (0 turns it off).
    rest_url: str | None = _setting("--rest-url", "QW_REST_URL", None)
    backfill_max_ids: int = _setting(
        "--backfill-max-ids", "QW_BACKFILL_MAX_IDS", DEFAULT_BACKFILL_MAX_IDS, _count
    )

    # The frame log under <data_dir>/wal: its group-write interval, and its size bound (0 turns
    # the log off, e.g. where the disk is memory, as on Cloud Run without a volume).
    wal_fsync_interval: float = _setting(
        "--wal-fsync-interval", "QW_WAL_FSYNC_INTERVAL", 0.2, _positive_float
    )
    wal_max_bytes: int = _setting("--wal-max-bytes", "QW_WAL_MAX_BYTES", 1 << 30, _count)

    @classmethod
    def resolve(
        cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from parsed flags, then the environment, then the defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            meta = f.metadata
            flag_value = getattr(args, f.name, None) if args is not None else None
            env_name = next((name for name in meta["env"] if environ.get(name)), None)
            if flag_value is not None:
                raw, origin = flag_value, meta["flag"]
            elif env_name is not None:
                raw, origin = environ[env_name], env_name
            else:
                continue
            try:
                values[f.name] = meta["parse"](raw) if isinstance(raw, str) else raw
            except ValueError as exc:
                raise ConfigError(f"{origin}={raw!r} is invalid: {exc}") from None
        if "host" not in values and environ.get(CLOUD_RUN_ENV):
            values["host"] = "0.0.0.0"
        return cls(**values)

    @staticmethod
    def environment_variables() -> tuple[str, ...]:
        """Every environment variable a setting reads, in declaration order."""
        return tuple(name for f in fields(Settings) for name in f.metadata["env"])
