"""Log set-up: human-readable lines locally, one JSON object per line on Cloud Run.

Cloud Logging parses a JSON line written to stdout or stderr into a structured entry: it reads
`severity` (Python's level names are valid severities), `message` and `time` (RFC 3339), and
keeps the other keys (`logger`) as the entry's payload.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from quotewatch.config import CLOUD_RUN_ENV

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CloudLoggingFormatter(logging.Formatter):
    """Formats a record as one JSON line with `severity`, `message`, `logger` and `time`."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        entry = {
            "severity": record.levelname,
            "message": message,
            "logger": record.name,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
        }
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(verbose: bool = False, environ: Mapping[str, str] | None = None) -> None:
    """Log at INFO (DEBUG if `verbose`) to stderr: JSON lines when K_SERVICE is set."""
    environ = os.environ if environ is None else environ
    handler = logging.StreamHandler(sys.stderr)
    if environ.get(CLOUD_RUN_ENV):
        handler.setFormatter(CloudLoggingFormatter())
    else:
        handler.setFormatter(logging.Formatter(HUMAN_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # httpx logs every request at INFO: one line per metrics push. qw_metrics logs a failing
    # push once and its recovery once, which is what an operator needs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
