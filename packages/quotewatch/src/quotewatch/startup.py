"""Start-up checks of what a run needs to write: fail at once with the fix, not lose every row
later (issue 18: an unwritable data dir was accepted, every flush and spill failed, exit 0)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from quotewatch.config import ConfigError, Settings


def probe_writable(directory: Path, purpose: str, flag: str) -> None:
    """Create ``directory`` if needed and write and remove a file in it; ConfigError if not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".qw-probe-", dir=directory)
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{purpose} {str(directory)!r} is not writable ({reason}): "
            f"fix its permissions or pick another with {flag}"
        ) from None


def probe_storage(settings: Settings) -> None:
    """Write-probe the data dir, its spill dir, and a local SQLite catalog's directory."""
    probe_writable(settings.data_dir, "data dir", "--data-dir / QW_DATA_DIR")
    probe_writable(settings.data_dir / "spill", "spill dir", "--data-dir / QW_DATA_DIR")
    uri = settings.catalog_uri or ""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        probe_writable(path.parent, "SQLite catalog dir", "--catalog-uri / QW_CATALOG_URI")
