"""What a chaos run deploys before it drives anything: the ledger, the dev server, the workers, and, in the
scaled shape, the API processes the driver talks to over HTTP.

Two shapes (`Shape`):

- single, as the run always was: a SQLite ledger, one `python worker.py`, and the desk in the run's own
  process (`ComplaintDesk` straight to Temporal and the ledger);
- scaled, as a deployment that serves real traffic runs: the ledger on a throwaway PostgreSQL cluster
  (`bench.ledger_cluster`), several workers on one task queue, and API processes (`refund-desk serve`)
  behind the driver (`bench.http_desk.HttpDesk`). An API process files under the policy of its
  environment, so there are `apis` processes for each of the three policies the scenarios file under
  (`bench.scenarios.PROFILES`); every other call goes to any of them.

Every process gets the same throwaway keys (vault, payload) and JWT secret, kept in the work directory's
`keys.env` so the run's histories can be decoded afterwards, and writes a log of its own there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.api_client import TIMEOUT, ApiPool
from bench.http_desk import HttpDesk
from bench.ledger_cluster import ledger_cluster
from bench.notices import People
from bench.processes import ApiProcess, DevServer, WorkerProcess, free_port
from bench.scenarios import PROFILES, Windows
from ledger.migrate import upgrade_url
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.settings import PolicySnapshot
from starter.desk import ComplaintDesk, connect
from starter.desk.codec import PayloadKeyring
from starter.desk.settings import TemporalSettings

METRICS_ADDRESS = "REFUND_DESK_WORKER_METRICS_ADDRESS"
"""Unset for every worker: several workers on one machine cannot all listen on one metrics port."""


@dataclass(frozen=True)
class Shape:
    ledger: str = "sqlite"
    """"sqlite" (a file in the work directory) or "postgresql" (a throwaway cluster)."""
    workers: int = 1
    apis: int = 0
    """API processes for each policy the scenarios file under; 0: the desk in the run's process."""

    @property
    def api_processes(self) -> int:
        return self.apis * len(PROFILES)


SCALED = Shape(ledger="postgresql", workers=3, apis=2)
"""`--scaled`: what the README's deployment runs, at the size a 2-core machine takes."""


@dataclass
class Deployment:
    shape: Shape
    server: DevServer
    queue: str
    payload_keys: str
    ledger: Ledger
    client: Client
    desk: ComplaintDesk | HttpDesk
    workers: list[WorkerProcess]
    apis: list[ApiProcess] = field(default_factory=list)
    pool: ApiPool | None = None


def policy_environment(policy: PolicySnapshot) -> dict[str, str]:
    """The REFUND_DESK_* variables that make an API process file under `policy` (seconds for durations)."""
    found: dict[str, str] = {}
    for name, value in policy.model_dump().items():
        text = str(value.total_seconds()) if isinstance(value, timedelta) else str(value)
        found[f"REFUND_DESK_{name.upper()}"] = text
    return found


@asynccontextmanager
async def deployed(
    shape: Shape, workdir: Path, folks: People, windows: Windows, patience: float, rng: random.Random
) -> AsyncIterator[Deployment]:
    """The shape deployed, healthy, for the block; everything stopped after it (the API processes first,
    then the workers, then the server, then the ledger)."""
    vault_keys = VaultKeyring.generate("vault1").spec()
    payload_keys = PayloadKeyring.generate("payload1").spec()
    jwt_secret = secrets.token_urlsafe(48)
    keys = workdir / "keys.env"  # throwaway keys, kept to decode the run's histories afterwards
    keys.touch(mode=0o600)
    keys.write_text(
        f"REFUND_DESK_VAULT_KEYS={vault_keys}\nREFUND_DESK_PAYLOAD_KEYS={payload_keys}\n"
        f"REFUND_DESK_JWT_SECRET={jwt_secret}\n"
    )
    os.environ["REFUND_DESK_PAYLOAD_KEYS"] = payload_keys  # connect() reads it, as the worker's does
    with contextlib.ExitStack() as stack:
        if shape.ledger == "postgresql":
            database_url = stack.enter_context(ledger_cluster(workdir)).url
        else:
            database_url = f"sqlite+aiosqlite:///{workdir / 'ledger.db'}"
        await upgrade_url(database_url)
        server = DevServer(db_file=workdir / "temporal.db", port=free_port(), log=workdir / "temporal.log")
        queue = f"chaos-{secrets.token_hex(4)}"
        environment = {
            "TEMPORAL_ADDRESS": server.address,
            "TEMPORAL_NAMESPACE": "default",
            "REFUND_DESK_TASK_QUEUE": queue,
            "DATABASE_URL": database_url,
            "REFUND_DESK_VAULT_KEYS": vault_keys,
            "REFUND_DESK_PAYLOAD_KEYS": payload_keys,
            **folks.environment(),
            "REFUND_DESK_JWT_SECRET": jwt_secret,
        }
        workers, apis = _processes(shape, workdir, environment, windows)
        ledger = Ledger.connect(database_url)
        http = httpx.AsyncClient(timeout=TIMEOUT, limits=httpx.Limits(max_connections=500))
        try:
            server.start()
            await server.ready()
            for process in [*workers, *apis]:
                process.start()
            client = await connect(TemporalSettings(address=server.address, task_queue=queue))
            reader = ComplaintDesk(
                client=client,
                ledger=ledger,
                keyring=VaultKeyring.parse(vault_keys),
                task_queue=queue,
                patience=timedelta(seconds=patience),
            )
            deployment = Deployment(shape, server, queue, payload_keys, ledger, client, reader, workers, apis)
            if apis:
                await asyncio.gather(*(api.ready() for api in apis))
                deployment.pool = _pool(http, apis, windows, jwt_secret, rng)
                deployment.desk = HttpDesk(deployment.pool, reader, policy=windows.profile("long"))
            yield deployment
        finally:
            await asyncio.gather(*(api.stop() for api in apis))
            await asyncio.gather(*(worker.stop() for worker in workers))
            await server.stop()
            await http.aclose()
            await ledger.close()


def _processes(
    shape: Shape, workdir: Path, environment: dict[str, str], windows: Windows
) -> tuple[list[WorkerProcess], list[ApiProcess]]:
    """The workers, and the API processes of each policy (its windows in their environment), not started."""
    workers = [
        WorkerProcess(
            environment=environment,
            log=workdir / _log("worker", n, shape.workers),
            unset=(METRICS_ADDRESS,),
        )
        for n in range(shape.workers)
    ]
    apis = [
        ApiProcess(
            environment={**environment, **policy_environment(windows.profile(profile))},
            log=workdir / f"api-{profile}-{n + 1}.log",
            port=free_port(),
            name=f"api-{profile}-{n + 1}",
            profile=profile,
        )
        for profile in PROFILES
        for n in range(shape.apis)
    ]
    return workers, apis


def _pool(
    http: httpx.AsyncClient, apis: list[ApiProcess], windows: Windows, secret: str, rng: random.Random
) -> ApiPool:
    """The driver's client over every API process, filing under a policy through that policy's."""
    return ApiPool(
        http=http,
        urls=[api.url for api in apis],
        filing={windows.profile(p): [api.url for api in apis if api.profile == p] for p in PROFILES},
        secret=secret,
        rng=random.Random(rng.getrandbits(64)),
    )


def _log(kind: str, n: int, count: int) -> str:
    """`worker.log` for the one worker of a single run (as it always was), `worker-2.log` among several."""
    return f"{kind}.log" if count == 1 else f"{kind}-{n + 1}.log"
