"""The worker's Temporal SDK metrics (docs/metrics.md): `worker.run` with REFUND_DESK_WORKER_METRICS_ADDRESS
on a free port against the real dev server, scraped over HTTP before and after a complaint is filed and
approved; the setting's refusals; and `make run`'s plan for it (the port checked with the others)."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

import worker
from ledger.vault import VaultKeyring
from policy.complaint import Review
from policy.models import ComplaintStatus, ReviewDecision
from starter.desk import ComplaintDesk
from starter.desk.settings import SettingsError
from starter.local.banner import metrics_line
from starter.local.preflight import port_problems, read_plan
from starter.local.run import worker_metrics_address
from starter.telemetry.runtime import METRICS_ADDRESS_ENV, RuntimeMetricsSettings, metrics_runtime
from tests.conftest import in_ledger, migrated_ledger
from tests.factories import DESCRIPTION, PAYLOAD_KEYS, POLICY, SUPPORT, customer, software_order
from tests.test_metrics import Scrape, free_port
from tests.test_run_local import listening, plan_for

S = ComplaintStatus


@pytest.fixture
async def sdk_worker(
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[tuple[ComplaintDesk, str]]:
    """`worker.run` as `refund-desk worker` runs it, from its environment: the dev server, a ledger of its
    own, the sticky cache on (its metrics count only with it), the SDK's metrics on a free port. Yields a
    desk on the same task queue and the metrics' URL."""
    address = f"127.0.0.1:{free_port()}"
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    database_url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    ledger = await migrated_ledger(database_url)
    keyring = VaultKeyring.generate("metrics")
    for name, value in {
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "REFUND_DESK_TASK_QUEUE": task_queue,
        "DATABASE_URL": database_url,
        "REFUND_DESK_VAULT_KEYS": keyring.spec(),
        "REFUND_DESK_PAYLOAD_KEYS": PAYLOAD_KEYS.spec(),
        "REFUND_DESK_WORKFLOW_CACHE": "10",
        METRICS_ADDRESS_ENV: address,
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.INFO, logger="refund_desk.worker")
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        yield ComplaintDesk(dev_server.client, ledger, keyring, task_queue), f"http://{address}/metrics"
    finally:
        stop.set()
        await running
        await ledger.close()


async def sdk_scrape(url: str) -> Scrape:
    for _ in range(100):  # the worker's runtime binds its port as it starts
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(url)
            assert response.status_code == 200, response.text
            return Scrape.parse(response.text)
        except httpx.ConnectError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing serves {url}")


def total(scraped: Scrape, name: str, **labels: str) -> float:
    """The sum of every sample named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(
        value for (sample, found), value in scraped.samples.items() if sample == name and wanted <= found
    )


async def test_the_workers_sdk_metrics_count_its_tasks_and_its_sticky_cache(
    sdk_worker: tuple[ComplaintDesk, str], caplog: pytest.LogCaptureFixture
) -> None:
    desk, url = sdk_worker
    before = await sdk_scrape(url)
    assert url in caplog.text, "the worker says where its metrics are"
    order = software_order()
    await desk.record_order(order)
    state = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
    await in_ledger(desk.ledger, state.complaint_id)
    await desk.review(state.complaint_id, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE))
    await in_ledger(desk.ledger, state.complaint_id, S.RECTIFYING)
    after = await sdk_scrape(url)
    queue = {"task_queue": desk.task_queue}

    for name in (
        "temporal_workflow_task_schedule_to_start_latency_count",
        "temporal_workflow_task_execution_latency_count",
        "temporal_activity_schedule_to_start_latency_count",
        "temporal_activity_execution_latency_count",
        "temporal_sticky_cache_hit_total",  # the parser's name for the SDK's `temporal_sticky_cache_hit`
    ):
        assert total(after, name, **queue) > total(before, name, **queue), name
    waited = total(after, "temporal_workflow_task_schedule_to_start_latency_sum", **queue)
    tasks = total(after, "temporal_workflow_task_schedule_to_start_latency_count", **queue)
    assert waited / tasks < 30, "durations are in seconds, not milliseconds"
    assert total(after, "temporal_worker_task_slots_available", worker_type="WorkflowWorker", **queue) > 0
    assert total(after, "temporal_sticky_cache_size", **queue) >= 1
    assert {
        "temporal_sticky_cache_hit",
        "temporal_sticky_cache_size",
        "temporal_worker_task_slots_available",
        "temporal_worker_task_slots_used",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "temporal_activity_schedule_to_start_latency_bucket",
        "temporal_workflow_task_execution_latency_bucket",
    } <= exposed_names(after.text), "the names as Prometheus stores them (docs/metrics.md)"


def exposed_names(text: str) -> set[str]:
    """Each sample's name as the text exposes it (the parser would add `_total` to a counter's)."""
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def test_no_address_no_runtime_and_a_taken_port_is_a_settings_error() -> None:
    assert metrics_runtime(RuntimeMetricsSettings()) is None
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = f"127.0.0.1:{held.getsockname()[1]}"
        with pytest.raises(SettingsError, match=METRICS_ADDRESS_ENV):
            metrics_runtime(RuntimeMetricsSettings(metrics_address=taken))


def test_make_run_checks_a_worker_metrics_address_given_and_takes_a_free_one_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with listening() as held:
        plan = plan_for(tmp_path, monkeypatch, **{METRICS_ADDRESS_ENV: f"127.0.0.1:{held}"})
        assert port_problems(plan) == [
            f"port {held} is taken (the worker's metrics): set {METRICS_ADDRESS_ENV} to another host:port"
        ]
        assert worker_metrics_address(plan) == f"127.0.0.1:{held}"
    chosen = worker_metrics_address(plan_for(tmp_path, monkeypatch))
    host, _, port = chosen.rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0
    line = metrics_line("http://127.0.0.1:8000", chosen)
    assert line == (
        "  Metrics    http://127.0.0.1:8000/metrics (the API's requests, the ledger's figures)\n"
        f"             http://{chosen}/metrics (the worker's Temporal SDK)\n"
    )
    monkeypatch.setenv(METRICS_ADDRESS_ENV, "9000")
    with pytest.raises(SettingsError, match=METRICS_ADDRESS_ENV):
        read_plan()
