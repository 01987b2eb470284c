"""Start-up checks of what a run needs to write: fail at once with the fix, not lose every row
later (issue 18: an unwritable data dir was accepted, every flush and spill failed, exit 0).

A remote catalog (Postgres, REST) that does not answer at start is no reason to stop: rows
spill under the data dir and are committed once it answers. The run says so in one line.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

from quotewatch.config import ConfigError, Settings
from quotewatch.storage.catalog import CatalogConfig, StorageConfigError, build_catalog, redact

log = logging.getLogger(__name__)

# Long enough for a TLS handshake to a distant catalog; a black-holed host costs start-up no more.
CATALOG_PROBE_TIMEOUT = 10.0


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
    """Write-probe the data dir, its spill dir, and a local SQLite catalog's directory; then
    open the catalog (see `probe_catalog`)."""
    probe_writable(settings.data_dir, "data dir", "--data-dir / QW_DATA_DIR")
    probe_writable(settings.data_dir / "spill", "spill dir", "--data-dir / QW_DATA_DIR")
    uri = settings.catalog_uri or ""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        probe_writable(path.parent, "SQLite catalog dir", "--catalog-uri / QW_CATALOG_URI")
    probe_catalog(settings)


def probe_catalog(settings: Settings, timeout: float = CATALOG_PROBE_TIMEOUT) -> None:
    """Open the catalog. A local SQLite one that cannot be opened is a ConfigError; a remote
    one that does not answer within `timeout` s is logged in one line, and the run goes on."""
    try:
        config = CatalogConfig.from_settings(settings)
    except StorageConfigError as exc:
        raise ConfigError(str(exc)) from None
    local = config.catalog_uri.startswith("sqlite:")
    error = _open_catalog(config, None if local else timeout)
    if error is None:
        return
    if local:
        raise ConfigError(
            f"SQLite catalog {config.catalog_uri.removeprefix('sqlite:///')!r} cannot be opened "
            f"({error}): move the file away or pick another with --catalog-uri / QW_CATALOG_URI"
        )
    log.warning(
        "catalog at %s is unreachable (%s): rows will spill to %s until it answers",
        redact(config.catalog_uri),
        _scrubbed(error, config.catalog_uri),
        settings.data_dir / "spill",
    )


def _open_catalog(config: CatalogConfig, timeout: float | None) -> str | None:
    """Open the catalog and list its namespaces, on a daemon thread so a host that never
    answers is given up on after `timeout` s; return why it failed, or None."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            build_catalog(config).list_namespaces()
            outcome.append(None)
        except Exception as exc:  # whatever the driver raises, the run reports it the same way
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            outcome.append(first_line[:300])

    thread = threading.Thread(target=attempt, name="catalog-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def _scrubbed(text: str, uri: str) -> str:
    """`text` without the password of `uri`, should a driver have echoed it."""
    credentials = uri.partition("://")[2].rpartition("@")[0]
    password = credentials.partition(":")[2]
    return text.replace(password, "***") if password else text
