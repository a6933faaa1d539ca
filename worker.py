"""Runs the Refund Desk worker: every workflow and activity on one task queue. `python worker.py`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import LedgerActivities
from dispatch.dispatcher import Dispatcher, LinkFor
from dispatch.links import customer_link
from dispatch.settings import DispatchSettings
from ledger.repository import Ledger
from ledger.settings import LedgerSettings
from ledger.vault import VaultKeyring
from starter.api.settings import ApiSettings
from starter.desk import connect
from starter.desk.codec import PayloadKeySettings
from starter.desk.sealed import worker_client
from starter.desk.settings import SettingsError, TemporalSettings
from starter.telemetry import traces
from starter.telemetry.log_context import ActivityLogContext
from starter.telemetry.logs import configure_process_logging
from starter.telemetry.runtime import RuntimeMetricsSettings, metrics_runtime
from workflows.activation import NumberActivationWorkflow
from workflows.defect_complaint import DefectComplaintWorkflow
from workflows.refund_claim import RefundClaimWorkflow

WORKFLOWS: Sequence[type] = (DefectComplaintWorkflow, RefundClaimWorkflow, NumberActivationWorkflow)

PASSED_THROUGH: tuple[str, ...] = (
    "activities",
    "ledger",
    "opentelemetry",
    "policy",
    "workflows.access",
    "workflows.clock",
    "workflows.common",
    "workflows.once",
    "workflows.patches",
    "workflows.refunds",
    "workflows.reports",
    "workflows.search_attributes",
)
"""The modules (each with its submodules) every workflow's sandbox shares with the worker instead of
importing them again for itself: imported once, outside the sandbox, for every workflow the worker runs.

Temporal's sandbox imports each workflow's module afresh for every workflow it builds, so a workflow's own
module-level state dies with it; every other module the workflow imports is imported again too, unless it is
passed through, and a cached workflow holds its copy (the SDK's README: pass through every module whose
calls are deterministic, the activities' and the pydantic models' in particular). Passing one through is
safe when nothing in it depends on which workflow imported it: no module-level state a workflow writes, no
side effect on import, nothing a workflow calls that reads the clock, randomness, the environment or does
I/O. Code in these modules runs unchecked by the sandbox's restrictions, which see only the workflow
module's own code; the workflow tests and the replay suite are their check. One by one:

- `activities`: a workflow references `LedgerActivities`' methods (their names and signatures) and the
  `LEDGER_CALL` options to schedule activities; it never calls them (the worker runs them, outside any
  sandbox). Importing it again per workflow would import the ledger, SQLAlchemy and the vault for nothing.
- `ledger`, for `ledger.records`: frozen pydantic models, the activities' inputs and outputs, with no
  module-level state. The whole package, because importing `ledger.records` imports `ledger` first, whose
  `__init__` imports the repository and SQLAlchemy: the sandbox would refuse those (they ask the platform
  at import), and a workflow calls none of them (the activities do, outside the sandbox).
- `policy`: the return policy as pure functions, frozen pydantic models and constant tables (no I/O, no
  clock: the package's own rule); `policy.ids`' random row ids and `policy.settings`' environment are for
  the desk and the ledger, and no workflow calls them.
- `workflows.access`, `.common`, `.once`, `.refunds`, `.reports`: the bases, mixins and helpers of the
  workflow classes: functions and classes whose state lives on the workflow instance, and which take the
  time and every decision from `temporalio.workflow` (sandbox-safe in or out of it); their constants are
  immutable.
- `workflows.clock`, `.patches`, `.search_attributes`: the wake clock (per instance), the patch ids and the
  search attribute keys: constants.
- `opentelemetry`: where tracing is on (`starter.telemetry.traces`), the tracing interceptor's workflow side
  starts each workflow span from the process's global tracer provider, its replay-safe one; a copy imported
  in the sandbox would hold no provider, and no context shared with the worker. Temporal's own
  `OpenTelemetryPlugin` passes it through for the same interceptor. Spans are no commands: nothing of it
  reaches a workflow's history.

The workflow modules themselves (`WORKFLOWS`' modules: `workflows.defect_complaint`, `.refund_claim`,
`.activation`) stay sandboxed, re-imported for each workflow: that isolation is the sandbox's point, and the
SDK keeps it. The workflow modules also import these inside `workflow.unsafe.imports_passed_through()`;
naming them here makes it one place, which holds for a helper imported without that block too, and what
`tests/test_worker_cache.py` checks: a workflow's sandbox imports nothing of its own but its module."""

log = logging.getLogger("refund_desk.worker")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every workflow of the worker runs in, with `PASSED_THROUGH` shared; the replay suite's
    `Replayer` runs the recorded histories in the same one."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    )


def build_worker(
    client: Client,
    ledger: Ledger,
    keyring: VaultKeyring,
    task_queue: str,
    *,
    accept_unsealed_until: datetime | None = None,
    inputs_sealed: bool = True,
    **options: Any,
) -> Worker:
    """Every workflow and activity on `task_queue`, the workflows in `workflow_runner()`'s sandbox; `options`
    go to `Worker` as they are (`TemporalSettings.worker_options()`: the sticky cache's bound and the slots).

    The worker runs on `client`'s connection with its own converter, which refuses a workflow's inputs
    unless the desk sealed them for that workflow (`starter.desk.sealed`; older releases' inputs pass until
    `accept_unsealed_until`). Only the history recorder of the replay suite, which records in clear, passes
    `inputs_sealed=False`.

    Bytecode is written even where PYTHONDONTWRITEBYTECODE says not to: Temporal's sandbox imports a
    workflow's module afresh for every workflow it builds (for every task of a workflow not in the sticky
    cache), and without bytecode each of those imports compiles the source again (about a tenth of the
    worker's busy time in a py-spy profile of the benchmarks, without the cache)."""
    sys.dont_write_bytecode = False
    activities = LedgerActivities(ledger, keyring)
    if inputs_sealed:
        client = worker_client(client, accept_unsealed_until)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities.all(),
        workflow_runner=workflow_runner(),
        interceptors=[ActivityLogContext()],  # an activity's lines name its complaint
        **options,
    )


async def run(stop: asyncio.Event | None = None) -> None:
    """Poll until `stop` is set (SIGINT/SIGTERM when run as a program), then finish in-flight tasks. The
    outbox's dispatcher runs beside the Temporal worker, on the same ledger."""
    temporal = TemporalSettings()
    ledger_settings = LedgerSettings()
    dispatch = DispatchSettings()
    metrics = RuntimeMetricsSettings()
    client = await connect(temporal, runtime=metrics_runtime(metrics))
    if metrics.metrics_address is not None:
        log.info("worker metrics (Temporal SDK, Prometheus) at http://%s/metrics", metrics.metrics_address)
    ledger = Ledger.connect(ledger_settings.database_url, delivery_retry_for=dispatch.delivery_retry_for)
    keyring = ledger_settings.keyring()
    stop = stop or asyncio.Event()
    try:
        worker = build_worker(
            client,
            ledger,
            keyring,
            temporal.task_queue,
            accept_unsealed_until=PayloadKeySettings().accept_unsealed_until,
            **temporal.worker_options(),
        )
        dispatcher = Dispatcher.over(ledger, keyring, dispatch, customer_links(dispatch))
        async with worker:
            log.info(
                "worker polling %s on %s (%s) with %s",
                temporal.task_queue,
                temporal.address,
                temporal.namespace,
                temporal.worker_options(),
            )
            await serve(worker, dispatcher, stop, temporal.worker_shutdown_grace)
    finally:
        await ledger.close()


async def serve(worker: Worker, dispatcher: Dispatcher, stop: asyncio.Event, grace: timedelta) -> None:
    """Dispatch beside the running `worker` until `stop` is set; then stop polling, and give the activities
    in flight and the deliveries being sent `grace` to finish (together, not one after the other) before
    they are cancelled. The worker's own `graceful_shutdown_timeout` is the same grace
    (`TemporalSettings.worker_options`); a cancelled delivery stays leased and is sent again once its lease
    runs out."""
    dispatching = asyncio.create_task(dispatcher.run(stop))
    await stop.wait()
    log.info("stopping: in-flight activities and deliveries have %s to finish", grace)
    await asyncio.gather(worker.shutdown(), finish_within(dispatching, grace))


async def finish_within(task: asyncio.Task[None], grace: timedelta) -> None:
    """Wait up to `grace` for `task`, then cancel it and wait for it to unwind."""
    done, _ = await asyncio.wait({task}, timeout=grace.total_seconds())
    if not done:
        log.warning(
            "deliveries still in flight after %s: cancelled, to be sent again after their lease", grace
        )
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def customer_links(dispatch: DispatchSettings) -> LinkFor | None:
    """Signed links to their complaints for customers' emails, with the API's token secret and rules;
    None (emails without a link) where this process has no token secret."""
    api = ApiSettings()
    try:
        secret = api.secret()
    except SettingsError:
        log.warning("no token secret: customers' emails go out without a link to their complaint")
        return None

    def link_for(complaint_id: str, customer_id: str) -> str:
        return customer_link(
            public_url=dispatch.public_url,
            secret=secret,
            complaint_id=complaint_id,
            customer_id=customer_id,
            lifetime=dispatch.link_lifetime,
            now=datetime.now(UTC),
            issuer=api.token_issuer,
            audience=api.token_audience,
        )

    return link_for


def main(argv: Sequence[str] | None = None) -> None:
    configure_process_logging()  # JSON on stderr; httpx's request URLs held back (QUIET_LOGGERS)
    traces.start(traces.WORKER)  # before connecting: the client takes its interceptors from it

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
