"""Iceberg storage: catalog set-up, table definitions, the background writer and maintenance."""

from quotewatch.storage.catalog import CatalogConfig, StorageConfigError, build_catalog
from quotewatch.storage.tables import TABLES, ensure_tables
from quotewatch.storage.writer import FlushResult, StorageWriter, TableCounts, WriterClosedError

__all__ = [
    "TABLES",
    "CatalogConfig",
    "FlushResult",
    "StorageConfigError",
    "StorageWriter",
    "TableCounts",
    "WriterClosedError",
    "build_catalog",
    "ensure_tables",
]
