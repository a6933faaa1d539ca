"""A stopping worker lets its in-flight work finish within REFUND_DESK_WORKER_SHUTDOWN_GRACE: an activity
running and a webhook being delivered when the stop comes both complete, and with a grace of zero both are
cancelled (the activity left to Temporal's retry, the delivery to its lease). On the dev server, through
`worker.serve`, the shutdown `python worker.py` runs on SIGTERM; and `python worker.py` itself, as an
operator runs it, takes the grace from its environment."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from dispatch.dispatcher import Dispatcher
from dispatch.events import ALL_TYPES, WebhookEvent
from dispatch.settings import DispatchSettings
from ledger.deliveries import PENDING, SENT, Deliveries, add_webhook_event
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from ledger.webhook_endpoints import WebhookEndpoints
from starter.desk.settings import DEFAULT_SHUTDOWN_GRACE, TemporalSettings
from tests.conftest import migrated_ledger
from tests.test_end_to_end import worker_process
from tests.test_webhook_sender import Receiver, receiving
from worker import serve

WAIT = 60
"""Seconds to wait for something that takes a moment on an idle machine (generous: two busy cores)."""


@dataclass
class SlowStep:
    """An activity that takes `seconds` and says whether it finished or was cancelled."""

    seconds: float
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: bool = False
    cancelled: bool = False

    @activity.defn(name="slow_step")
    async def run(self) -> str:
        self.started.set()
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = True
        return "done"


@workflow.defn(name="ShutdownProbe", sandboxed=False)
class ShutdownProbe:
    @workflow.run
    async def run(self) -> str:
        result: str = await workflow.execute_activity(
            "slow_step",
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        return result


async def wait_until(condition: str, check: object) -> None:
    deadline = time.monotonic() + WAIT
    while not (check() if callable(check) else check):
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {condition}")
        await asyncio.sleep(0.05)


@dataclass
class Outcome:
    step: SlowStep
    receiver: Receiver
    deliveries: dict[str, int]
    history: list[EventType.ValueType]
    stopped_in: float


async def stop_with_work_in_flight(
    env: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring, grace: timedelta, takes: float
) -> Outcome:
    """A worker with `grace` (from the settings, as `python worker.py` reads it) running an activity that
    takes `takes` seconds, and its dispatcher sending a webhook whose receiver answers after as long;
    stopped once both are under way. Returns what finished and how long the stop took."""
    settings = TemporalSettings(worker_shutdown_grace=grace)
    queue = f"grace-{uuid.uuid4().hex[:8]}"
    step = SlowStep(takes)
    endpoints = WebhookEndpoints(ledger.engine, keyring)
    receiver = Receiver(secrets=[], delay=takes)
    async with receiving(receiver) as url:
        endpoint, secret = await endpoints.create(url, [ALL_TYPES], "the shop's backend")
        receiver.secrets.append(secret)
        now = datetime.now(UTC)
        event = WebhookEvent(
            id=f"evt_{queue}", type="complaint.status_changed", occurred_at=now, data={}, sequence_key=queue
        )
        async with ledger.engine.begin() as conn:
            await add_webhook_event(
                conn, ledger._insert, event, [endpoint.endpoint_id], now=now, retry_for=timedelta(days=1)
            )
        dispatch = DispatchSettings(
            webhook_timeout=timedelta(minutes=5), dispatch_interval=timedelta(seconds=0.2)
        )
        dispatcher = Dispatcher.over(ledger, keyring, dispatch, None)
        worker = Worker(
            env.client,
            task_queue=queue,
            workflows=[ShutdownProbe],
            activities=[step.run],
            workflow_runner=UnsandboxedWorkflowRunner(),
            **settings.worker_options(),
        )
        stop = asyncio.Event()
        async with worker:
            serving = asyncio.create_task(serve(worker, dispatcher, stop, settings.worker_shutdown_grace))
            handle = await env.client.start_workflow(ShutdownProbe.run, id=queue, task_queue=queue)
            await wait_until("the activity started", step.started.is_set)
            await wait_until("the webhook reached its receiver", lambda: receiver.got)
            stopping = time.monotonic()
            stop.set()
            await asyncio.wait_for(serving, timeout=grace.total_seconds() + WAIT)
            stopped_in = time.monotonic() - stopping
        history = [event.event_type async for event in handle.fetch_history_events()]
        deliveries = await Deliveries(ledger.engine).counts()
    return Outcome(step, receiver, deliveries, history, stopped_in)


async def test_in_flight_work_finishes_within_the_grace(
    dev_server: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring
) -> None:
    outcome = await stop_with_work_in_flight(dev_server, ledger, keyring, timedelta(seconds=60), takes=3)

    assert outcome.step.finished and not outcome.step.cancelled, "the activity ran to its end"
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in outcome.history, "and the server heard of it"
    assert outcome.deliveries == {SENT: 1}, "the webhook's answer was recorded"
    assert len(outcome.receiver.got) == 1 and outcome.receiver.got[0].verified
    assert outcome.stopped_in < 45, "the stop ends when the work does, not when the grace runs out"


async def test_with_no_grace_in_flight_work_is_cancelled(
    dev_server: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring
) -> None:
    outcome = await stop_with_work_in_flight(dev_server, ledger, keyring, timedelta(0), takes=8)

    assert outcome.step.cancelled and not outcome.step.finished
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED not in outcome.history
    assert outcome.deliveries == {PENDING: 1}, "left leased, to be sent again once its lease runs out"
    assert outcome.stopped_in < 7, "nothing waited for the receiver's answer"


def test_the_grace_defaults_to_thirty_seconds_and_reaches_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REFUND_DESK_WORKER_SHUTDOWN_GRACE", raising=False)
    assert TemporalSettings().worker_options()["graceful_shutdown_timeout"] == DEFAULT_SHUTDOWN_GRACE
    assert timedelta(seconds=30) == DEFAULT_SHUTDOWN_GRACE, "the default docs/settings.md and compose name"
    for given, meant in (("PT2M", timedelta(minutes=2)), ("45", timedelta(seconds=45)), ("0", timedelta(0))):
        monkeypatch.setenv("REFUND_DESK_WORKER_SHUTDOWN_GRACE", given)
        assert TemporalSettings().worker_options()["graceful_shutdown_timeout"] == meant
    monkeypatch.setenv("REFUND_DESK_WORKER_SHUTDOWN_GRACE", "-1")
    with pytest.raises(ValueError, match="REFUND_DESK_WORKER_SHUTDOWN_GRACE"):
        TemporalSettings()


async def test_python_worker_py_takes_the_grace_from_its_environment(
    dev_server: WorkflowEnvironment, keyring: VaultKeyring, tmp_path: Path
) -> None:
    """SIGTERM to the process an operator runs: it says the grace it gives and, with nothing in flight,
    exits at once with 0 rather than waiting the grace out."""
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    await (await migrated_ledger(url)).close()
    log = tmp_path / "worker.log"
    extra = {"REFUND_DESK_WORKER_SHUTDOWN_GRACE": "PT47S"}
    with worker_process(dev_server, url, keyring, f"grace-{uuid.uuid4().hex[:8]}", log, extra) as process:
        await wait_until("the worker polls", lambda: "worker polling" in log.read_text(errors="replace"))
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, WAIT)
        stopped_in = time.monotonic() - stopping
        assert process.poll() == 0, log.read_text(errors="replace")
    said = log.read_text(errors="replace")
    assert "will wait 0:00:47 before cancelling activities" in said, said
    assert "have 0:00:47 to finish" in said, said
    assert stopped_in < 40, "nothing in flight: no need to wait the grace out"
