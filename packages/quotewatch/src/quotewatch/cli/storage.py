"""`quotewatch storage recover|expire|compact|tables|head`: Iceberg table upkeep and inspection."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from quotewatch.config import ConfigError, Settings
from quotewatch.rows import TABLE_NAMES

# pyiceberg takes seconds to import: the handlers import storage modules when they run, so
# `quotewatch --help` and the other commands stay fast.


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the `storage` command with its actions."""
    parser = subparsers.add_parser(
        "storage",
        help="recover spill files, expire snapshots, compact, list tables, show rows",
        description="Upkeep of the quotewatch Iceberg tables. The catalog and warehouse come "
        "from --catalog-uri/QW_CATALOG_URI and --warehouse/QW_WAREHOUSE, by default an "
        "embedded SQLite catalog and file warehouse under --data-dir/QW_DATA_DIR.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=description
        )
        sub.add_argument("--data-dir", default=None, help="data directory (default ./.quotewatch)")
        sub.add_argument(
            "--catalog-uri", default=None, help="sqlite:///, postgresql:// or http(s)://"
        )
        sub.add_argument("--warehouse", default=None, help="file://, gs:// or s3:// location")
        return sub

    action(
        "recover",
        "append the spill files in the data dir, exactly once",
        "Commit every Parquet file under <data-dir>/spill/ to its table. A file whose batch "
        "is already in the table (a crash after commit) is deleted without appending it again.",
    ).set_defaults(handler=_recover)

    expire = action(
        "expire",
        "drop snapshots older than an age from the table metadata",
        "Recover spill files first (their exactly-once check reads the snapshot history), "
        "then expire snapshots older than --older-than in every table. The current snapshot "
        "is always kept.",
    )
    expire.add_argument(
        "--older-than", default="30d", type=_age, help="age such as 30d, 12h (default 30d)"
    )
    expire.set_defaults(handler=_expire)

    compact = action(
        "compact",
        "rewrite a day's small files into one file per product",
        "Rewrite every file of one UTC day into one file per product, in one commit per "
        "table, after checking the new files hold exactly the same rows.",
    )
    compact.add_argument(
        "--day", type=_day, default=None, help="UTC day YYYY-MM-DD (default: yesterday)"
    )
    compact.set_defaults(handler=_compact)

    action(
        "tables",
        "list the tables with rows, files, snapshots and size",
        "One line per quotewatch table: rows, data files, snapshots, bytes, last commit.",
    ).set_defaults(handler=_tables)

    head = action("head", "print the first rows of a table", "Print the first N rows of TABLE.")
    head.add_argument("table", choices=TABLE_NAMES, metavar="TABLE", help=", ".join(TABLE_NAMES))
    head.add_argument("-n", type=int, default=10, help="rows to print (default 10)")
    head.set_defaults(handler=_head)


def _age(text: str) -> dt.timedelta:
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit():
        raise argparse.ArgumentTypeError(
            f"age {text!r} is not a number followed by d, h, m or s (e.g. 30d)"
        )
    return dt.timedelta(**{units[unit]: int(number)})


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"day {text!r} is not YYYY-MM-DD") from None


def _run(args: argparse.Namespace, body: Any) -> int:
    from quotewatch.storage.catalog import CatalogConfig, StorageConfigError, build_catalog

    try:
        settings = Settings.resolve(args)
        catalog = build_catalog(CatalogConfig.from_settings(settings))
        return int(body(settings, catalog))
    except (ConfigError, StorageConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _recover(args: argparse.Namespace) -> int:
    from quotewatch.storage.spill import recover
    from quotewatch.storage.tables import ensure_tables

    def body(settings: Settings, catalog: Any) -> int:
        appended = recover(settings.data_dir, ensure_tables(catalog))
        for name, rows in appended.items():
            print(f"{name}: {rows} rows appended")
        return 0

    return _run(args, body)


def _expire(args: argparse.Namespace) -> int:
    from quotewatch.storage import maintenance
    from quotewatch.storage.spill import recover, spill_files
    from quotewatch.storage.tables import ensure_tables

    def body(settings: Settings, catalog: Any) -> int:
        tables = ensure_tables(catalog)
        recover(settings.data_dir, tables)
        left = [name for name in TABLE_NAMES if spill_files(settings.data_dir, name)]
        if left:
            print(f"error: spill files of {', '.join(left)} remain; not expiring", file=sys.stderr)
            return 1
        for name, count in maintenance.expire(catalog, args.older_than).items():
            print(f"{name}: {count} snapshots expired")
        return 0

    return _run(args, body)


def _compact(args: argparse.Namespace) -> int:
    from quotewatch.storage import maintenance

    day = args.day or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)

    def body(settings: Settings, catalog: Any) -> int:
        for r in maintenance.compact(catalog, day):
            print(f"{r.table} {r.day}: {r.rows} rows, {r.files_before} -> {r.files_after} files")
        return 0

    return _run(args, body)


def _tables(args: argparse.Namespace) -> int:
    from quotewatch.storage import maintenance

    def body(settings: Settings, catalog: Any) -> int:
        infos = maintenance.describe(catalog)
        if not infos:
            print("no quotewatch tables yet: they are created when a writer starts")
            return 0
        print(f"{'table':<15}{'rows':>12}{'files':>8}{'snapshots':>11}{'bytes':>14}  last commit")
        for t in infos:
            last = t.last_commit.isoformat(timespec="seconds") if t.last_commit else "-"
            print(f"{t.name:<15}{t.rows:>12}{t.files:>8}{t.snapshots:>11}{t.bytes:>14}  {last}")
        return 0

    return _run(args, body)


def _head(args: argparse.Namespace) -> int:
    from quotewatch.storage import maintenance

    def body(settings: Settings, catalog: Any) -> int:
        if not catalog.table_exists(f"quotewatch.{args.table}"):
            print(f"error: table quotewatch.{args.table} does not exist yet", file=sys.stderr)
            return 1
        rows = maintenance.head(catalog, args.table, args.n)
        for row in rows.to_pylist():
            print({k: str(v) if v is not None else None for k, v in row.items()})
        return 0

    return _run(args, body)
