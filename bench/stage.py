"""The stage every benchmark runs on: one Temporal dev server, one SQLite ledger, throwaway keys, and the
workers (the project's `python worker.py` and the bare baseline's) as real processes on loopback.

The project and its baseline share the server, so a ratio between them holds on a noisy machine; each has
a task queue and a worker process of its own, so each worker's memory can be read apart.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.baseline import SDK_DEFAULT_CACHE
from bench.processes import DevServer, WorkerProcess, free_port
from bench.report import OUT
from ledger.migrate import upgrade_url
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from starter.desk import ComplaintDesk, connect
from starter.desk.codec import PayloadKeyring
from starter.desk.settings import TemporalSettings


@dataclass
class Stage:
    workdir: Path
    server: DevServer
    database_url: str
    vault_keys: str
    payload_keys: str
    client: Client
    ledger: Ledger
    workers: list[WorkerProcess] = field(default_factory=list)

    def environment(self, queue: str, *, prefix: str = "REFUND_DESK_", **settings: Any) -> dict[str, str]:
        """What `worker.py` (and the API) read: this stage's server, ledger and keys, and `settings` as
        `<prefix><NAME>` variables (e.g. workflow_cache=0 as REFUND_DESK_WORKFLOW_CACHE=0). The data folder
        is the work directory: nothing of a developer's `.data/` (the policy.json `make run` left, the mail
        sink) reaches a benchmark, and nothing of a benchmark's reaches it."""
        env = {
            "REFUND_DESK_DATA_DIR": str(self.workdir),
            "TEMPORAL_ADDRESS": self.server.address,
            "TEMPORAL_NAMESPACE": "default",
            "REFUND_DESK_TASK_QUEUE": queue,
            "DATABASE_URL": self.database_url,
            "REFUND_DESK_VAULT_KEYS": self.vault_keys,
            "REFUND_DESK_PAYLOAD_KEYS": self.payload_keys,
        }
        env.update({f"{prefix}{name.upper()}": str(value) for name, value in settings.items()})
        return env

    def start_worker(self, queue: str, *, baseline: bool = False, **settings: Any) -> WorkerProcess:
        """The project's `python worker.py`, or with `baseline` the bare workflows' `python -m
        bench.baseline`, polling `queue` with `settings` (see `environment`). The project's worker takes
        the settings left out from the environment, as deployed; the baseline's are `BENCH_BARE_<NAME>`
        variables (`bench.baseline.bare_worker_options`), and those left out are the SDK's defaults."""
        name = "baseline" if baseline else "worker"
        prefix = "BENCH_BARE_" if baseline else "REFUND_DESK_"
        worker = WorkerProcess(
            environment=self.environment(queue, prefix=prefix, **settings),
            log=self.workdir / f"{name}-{queue}.log",
            arguments=("-m", "bench.baseline") if baseline else ("worker.py",),
        )
        worker.start()
        self.workers.append(worker)
        return worker

    def desk(self, queue: str, patience: float = 120) -> ComplaintDesk:
        return ComplaintDesk(
            client=self.client,
            ledger=self.ledger,
            keyring=VaultKeyring.parse(self.vault_keys),
            task_queue=queue,
            patience=timedelta(seconds=patience),
        )


def deployed_cache() -> int:
    """The sticky cache `python worker.py` runs with when a benchmark leaves it as deployed: its settings'
    default, or REFUND_DESK_WORKFLOW_CACHE where this shell sets it (the worker inherits the environment)."""
    cache: int = TemporalSettings().worker_options().get("max_cached_workflows", SDK_DEFAULT_CACHE)
    return cache


def new_queue(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@asynccontextmanager
async def stage(name: str, keep: bool = bool(os.environ.get("BENCH_KEEP"))) -> AsyncIterator[Stage]:
    """A fresh work directory `.data/bench/<name>-run/` with the server and ledger in it; everything is
    stopped on the way out, and the directory removed unless `keep` (`BENCH_KEEP=1`) or the run failed:
    its logs tell why."""
    workdir = OUT / f"{name}-run"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    vault_keys = VaultKeyring.generate("bench-vault").spec()
    payload_keys = PayloadKeyring.generate("bench-payload").spec()
    os.environ["REFUND_DESK_PAYLOAD_KEYS"] = payload_keys  # connect() encrypts with them, as the worker does
    database_url = f"sqlite+aiosqlite:///{workdir / 'ledger.db'}"
    await upgrade_url(database_url)
    server = DevServer(db_file=workdir / "temporal.db", port=free_port(), log=workdir / "temporal.log")
    server.start()
    ledger = Ledger.connect(database_url)
    current: Stage | None = None
    failed = True
    try:
        began = time.monotonic()
        await server.ready()
        print(f"dev server up on {server.address} in {time.monotonic() - began:.1f} s", flush=True)
        client = await connect(TemporalSettings(address=server.address))
        current = Stage(workdir, server, database_url, vault_keys, payload_keys, client, ledger)
        yield current
        failed = False
    finally:
        for worker in current.workers if current else []:
            await worker.stop()
        await server.stop()
        await ledger.close()
        if failed or keep:
            print(f"work directory kept: {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
