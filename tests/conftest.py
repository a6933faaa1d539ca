"""Shared fixtures: a real time-skipping Temporal server, real ledgers (SQLite and PostgreSQL), a worker.

Nothing here is mocked: workflows run on `temporal-test-server`, activities write a migrated ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from ledger.migrate import upgrade
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import ComplaintState
from starter.binaries import tool_path
from starter.client import ComplaintDesk, register_search_attributes
from tests.postgres import throwaway_cluster
from worker import build_worker

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
        data_converter=pydantic_data_converter,
        test_server_existing_path=tool_path("temporal-test-server"),
        runtime=QUIET_RUNTIME,
    )
    await register_search_attributes(environment.client)
    async with environment:
        yield environment


class TimeSkippingDesk(ComplaintDesk):
    """The real desk; waiting for an outcome lets the test server skip time, as `handle.result()` does for
    workflows the test environment itself started."""

    async def outcome(self, complaint_id: str) -> ComplaintState:
        await self.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        try:
            return await super().outcome(complaint_id)
        finally:
            await self.client.test_service.lock_time_skipping(LockTimeSkippingRequest())


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
