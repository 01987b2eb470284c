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
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: Debian's newest, else whatever is on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a cluster; yield its SQLAlchemy URI (`postgresql+psycopg2://...`); stop it."""
    bindir = postgres_bin()
    assert bindir is not None, "needs initdb and pg_ctl: apt-get install postgresql"
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="qw-pg-", dir="/tmp"))
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    data, log = base / "data", base / "server.log"
    port = _free_port()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    subprocess.run(
        [*run_as, *initdb, "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data)]
    started = subprocess.run(
        [*pg_ctl, "-o", options, "-l", str(log), "-w", "-t", "60", "start"],
        check=False,
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise AssertionError(f"postgres did not start: {started.stderr}\n{text}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
