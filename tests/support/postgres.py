"""A throwaway Postgres cluster for tests: `initdb` and `pg_ctl` on a temporary directory and a
free loopback port, no system service.

Debian's `postgresql` package keeps its programs in /usr/lib/postgresql/VERSION/bin, off PATH.
initdb refuses to run as root, so under root (as in CI) the cluster runs as the `postgres` user
the package creates, in a directory that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.prometheus import free_port


def _version(initdb: Path) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin/initdb, (9, 6) for .../9.6/...; () if unparsable."""
    try:
        return tuple(int(part) for part in initdb.parts[-3].split("."))
    except ValueError:
        return ()


def postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: `pg_config --bindir`, else Debian's newest
    /usr/lib/postgresql/VERSION/bin, else whatever is on PATH; None when there is none."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version, reverse=True)
    candidates += [p.parent for p in found]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl")):
            return bindir
    return None


@dataclass(frozen=True)
class Cluster:
    """A running throwaway cluster: its SQLAlchemy URI, and `stop` / `start` for an outage."""

    uri: str
    pg_ctl: list[str]
    options: str
    log: Path

    def stop(self) -> None:
        """Stop the server at once, cutting its clients off, as a crash or a cut link would."""
        subprocess.run([*self.pg_ctl, "-m", "immediate", "stop"], capture_output=True, check=False)

    def start(self) -> None:
        """Start the server (again) on its port; AssertionError with its log if it will not."""
        started = subprocess.run(
            [*self.pg_ctl, "-o", self.options, "-l", str(self.log), "-w", "-t", "60", "start"],
            check=False,
            capture_output=True,
            text=True,
        )
        if started.returncode != 0:
            text = self.log.read_text() if self.log.exists() else ""
            raise AssertionError(f"postgres did not start: {started.stderr}\n{text}")


@contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    """Start a cluster; yield it (its URI is `postgresql+psycopg2://...`); stop and remove it."""
    bindir = postgres_bin()
    assert bindir is not None, "needs initdb and pg_ctl: apt-get install postgresql"
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="qw-pg-", dir="/tmp"))
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    data, log = base / "data", base / "server.log"
    port = free_port()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    subprocess.run(
        [*run_as, *initdb, "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    cluster = Cluster(
        uri=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres",
        pg_ctl=[*run_as, str(bindir / "pg_ctl"), "-D", str(data)],
        options=f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
        log=log,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a cluster; yield its SQLAlchemy URI (`postgresql+psycopg2://...`); stop it."""
    with postgres_cluster() as cluster:
        yield cluster.uri


def new_database(uri: str, name: str) -> str:
    """Create database `name` in the cluster at `uri` (one per test: tests sharing a cluster
    see none of each other's tables); return its URI."""
    import psycopg2  # imported here: conftest imports this module for `postgres_bin` alone

    server, _, _ = uri.removeprefix("postgresql+psycopg2").rpartition("/")
    connection = psycopg2.connect(f"postgresql{server}/postgres")
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return f"{uri.rpartition('/')[0]}/{name}"
