"""Build the Iceberg catalog: embedded SQLite by default, Postgres or REST in production.

The embedded default keeps everything under the data dir: `<data_dir>/catalog.db` (a pyiceberg
SQL catalog on SQLite) and `<data_dir>/warehouse` (the table files). Production points
`QW_CATALOG_URI` at a shared catalog (`postgresql://...` for the SQL catalog, `http(s)://...`
for a REST catalog) and `QW_WAREHOUSE` at object storage (`gs://`, `s3://`) or `file://`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pyiceberg.catalog.sql import SqlCatalog

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from quotewatch.config import Settings

CATALOG_NAME = "quotewatch"
CATALOG_SCHEMES = ("sqlite", "postgresql", "http", "https")
WAREHOUSE_SCHEMES = ("file", "gs", "s3")


class StorageConfigError(ValueError):
    """A catalog or warehouse setting cannot be used; the message names it and the fix."""


def redact(uri: str) -> str:
    """Return `uri` with its credentials (password or token) replaced by `***`."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest:
        return uri
    # Up to the LAST "@": a password may itself contain "@"; over-redacting is the safe side.
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}:***@{host}" if has_password else f"{scheme}://***@{host}"


@dataclass(frozen=True)
class CatalogConfig:
    """Where the catalog and the warehouse live, resolved from the data dir and two URIs."""

    catalog_uri: str
    warehouse: str

    @classmethod
    def resolve(
        cls, data_dir: Path, catalog_uri: str | None = None, warehouse: str | None = None
    ) -> CatalogConfig:
        """Fill in the embedded defaults under `data_dir` and validate both schemes."""
        data_dir = data_dir.expanduser().resolve()
        uri = catalog_uri or f"sqlite:///{data_dir / 'catalog.db'}"
        where = warehouse or (data_dir / "warehouse").as_uri()
        _check_catalog_uri(uri)
        _check_warehouse(where)
        return cls(uri, where)

    @classmethod
    def from_settings(cls, settings: Settings) -> CatalogConfig:
        """Resolve from quotewatch settings (`--data-dir`, `--catalog-uri`, `--warehouse`)."""
        return cls.resolve(settings.data_dir, settings.catalog_uri, settings.warehouse)

    def __repr__(self) -> str:
        uri = redact(self.catalog_uri)
        return f"CatalogConfig(catalog_uri={uri!r}, warehouse={self.warehouse!r})"


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""


def _check_catalog_uri(uri: str) -> None:
    scheme = _scheme(uri)
    if scheme not in CATALOG_SCHEMES:
        raise StorageConfigError(
            f"QW_CATALOG_URI={redact(uri)!r} has an unsupported scheme {scheme or '(none)'!r}: "
            "use sqlite:///path/catalog.db, postgresql://user:pass@host/db (SQL catalog) "
            "or http(s)://host/ (REST catalog)"
        )
    if scheme == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        raise StorageConfigError(
            f"QW_CATALOG_URI={redact(uri)!r} needs the Postgres driver: "
            "install quotewatch[postgres] (pyiceberg[sql-postgres])"
        )


def _check_warehouse(warehouse: str) -> None:
    scheme = _scheme(warehouse)
    if scheme not in WAREHOUSE_SCHEMES:
        raise StorageConfigError(
            f"QW_WAREHOUSE={warehouse!r} has an unsupported scheme {scheme or '(none)'!r}: "
            "use file:///absolute/path, gs://bucket/prefix or s3://bucket/prefix"
        )


def build_catalog(config: CatalogConfig) -> Catalog:
    """Open (and for SQL catalogs, initialise) the catalog described by `config`."""
    scheme = _scheme(config.catalog_uri)
    if scheme in ("http", "https"):
        # Imported here: the REST client costs seconds of start-up that SQL catalogs never need.
        from pyiceberg.catalog.rest import RestCatalog  # noqa: PLC0415

        return RestCatalog(CATALOG_NAME, uri=config.catalog_uri, warehouse=config.warehouse)
    if scheme == "sqlite":
        Path(config.catalog_uri.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    if config.warehouse.startswith("file://"):
        Path(config.warehouse.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return SqlCatalog(CATALOG_NAME, uri=config.catalog_uri, warehouse=config.warehouse)
