"""Runs the Refund Desk worker: every workflow and activity on one task queue. `python worker.py`."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

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
from workflows.activation import NumberActivationWorkflow
from workflows.defect_complaint import DefectComplaintWorkflow
from workflows.refund_claim import RefundClaimWorkflow

WORKFLOWS: Sequence[type] = (DefectComplaintWorkflow, RefundClaimWorkflow, NumberActivationWorkflow)

log = logging.getLogger("refund_desk.worker")


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
    """Every workflow and activity on `task_queue`; `options` go to `Worker` as they are.

    The worker runs on `client`'s connection with its own converter, which refuses a workflow's inputs
    unless the desk sealed them for that workflow (`starter.desk.sealed`; older releases' inputs pass until
    `accept_unsealed_until`). Only the history recorder of the replay suite, which records in clear, passes
    `inputs_sealed=False`.

    Bytecode is written even where PYTHONDONTWRITEBYTECODE says not to: Temporal's sandbox imports a
    workflow's module afresh for every workflow it builds (for every task, with the sticky cache off), and
    without bytecode each of those imports compiles the source again (about a tenth of the worker's busy
    time in a py-spy profile of the benchmarks)."""
    sys.dont_write_bytecode = False
    activities = LedgerActivities(ledger, keyring)
    if inputs_sealed:
        client = worker_client(client, accept_unsealed_until)
    return Worker(
        client, task_queue=task_queue, workflows=list(WORKFLOWS), activities=activities.all(), **options
    )


async def run(stop: asyncio.Event | None = None) -> None:
    """Poll until `stop` is set (SIGINT/SIGTERM when run as a program), then finish in-flight tasks. The
    outbox's dispatcher runs beside the Temporal worker, on the same ledger."""
    temporal = TemporalSettings()
    ledger_settings = LedgerSettings()
    dispatch = DispatchSettings()
    client = await connect(temporal)
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
            dispatching = asyncio.create_task(dispatcher.run(stop))
            await stop.wait()
            log.info("stopping: finishing in-flight tasks")
            await dispatching
    finally:
        await ledger.close()


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request's URL at INFO: a webhook endpoint's URL may carry the shop's own token.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
