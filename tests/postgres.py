"""A throwaway PostgreSQL cluster for the ledger tests: initdb into a temporary folder, start, stop, remove.

No PostgreSQL server runs on a fresh machine or in CI, so the suite brings its own. initdb refuses to run as
root, so as root the cluster is created and run as the `postgres` system user. A missing PostgreSQL is an
error, never a skip: `make test` installs it first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's programs (Debian's versioned directory), else those on PATH."""
    candidates = [str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(on_path)
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed (no initdb); `make test` installs it with apt-get")
    return Path(candidates[0]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_cluster_owner(args: list[str]) -> list[str]:
    """`args` run as the cluster's owner: initdb and pg_ctl refuse root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class Cluster:
    """A running throwaway cluster that a test may stop and start again (the ledger going away)."""

    url: str
    data: Path
    log: Path
    options: str

    def _pg_ctl(self, *args: str) -> None:
        command = [str(postgres_bindir() / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(as_cluster_owner(command), check=True, capture_output=True)

    def start(self) -> None:
        self._pg_ctl("-l", str(self.log), "-o", self.options, "-w", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "-w", "stop")


@contextmanager
def stoppable_cluster() -> Iterator[Cluster]:
    """A fresh cluster for the block, removed after it (stopped first if the test left it running)."""
    bindir = postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="refund-desk-pg-"))
    data = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    try:
        subprocess.run(
            as_cluster_owner([str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"]),
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        cluster = Cluster(
            url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres",
            data=data,
            log=root / "server.log",
            options=options,
        )
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Yield an admin URL (`postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres`) for a fresh cluster."""
    with stoppable_cluster() as cluster:
        yield cluster.url
