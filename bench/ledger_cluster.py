"""A throwaway PostgreSQL cluster for a chaos run's ledger: initdb into a folder of its own, start, stop,
remove, as tests/postgres.py does for the ledger tests.

The API processes and the workers of a scaled run share one ledger from several processes at once, which
is what PostgreSQL is deployed for and SQLite is not. initdb refuses to run as root, so as root the cluster
is created and run as the `postgres` system user, in a folder under the system's temporary directory that
user can reach (a pytest work directory under /tmp/pytest-of-root is not). The server's log is copied into
the run's work directory when the cluster stops, for whoever reads the run afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.processes import free_port
from tests.postgres import as_cluster_owner, postgres_bindir

MAX_CONNECTIONS = 600
"""Every process of a scaled run holds a pool of its own (SQLAlchemy's default: up to 15 connections per
engine, and a process may open two engines): three workers, six API processes, the run itself and the
restarted processes whose connections the server has not noticed are gone yet exceed PostgreSQL's 100."""


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its URL for the ledger (`postgresql+asyncpg://...`) and where it keeps its data."""

    url: str
    root: Path


def _run(args: list[str]) -> None:
    subprocess.run(as_cluster_owner(args), check=True, capture_output=True)


@contextmanager
def ledger_cluster(keep_log_in: Path) -> Iterator[Cluster]:
    """A fresh cluster on a free loopback port for the block; stopped (immediately: nothing in it is kept)
    and removed after it, its server log copied to `keep_log_in/postgresql.log`."""
    bindir = postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
    data, log = root / "data", root / "server.log"
    port = free_port()
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"])
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c max_connections={MAX_CONNECTIONS}"
        )
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
        try:
            yield Cluster(url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres", root=root)
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
            with contextlib.suppress(OSError):
                shutil.copyfile(log, keep_log_in / "postgresql.log")
    finally:
        shutil.rmtree(root, ignore_errors=True)
