"""`ComplaintDesk`: the one client that the HTTP API, the CLI, the benchmarks and the tests drive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ledger.repository import Ledger
from ledger.settings import LedgerSettings
from policy.settings import PolicySettings, PolicySnapshot
from starter.desk.complaint_actions import ComplaintActions
from starter.desk.connection import connect
from starter.desk.reports import ComplaintReports
from starter.desk.settings import TemporalSettings


class ComplaintDesk(ComplaintActions, ComplaintReports):
    """Typed calls for the backend, support and customers, with policy refusals raised as
    `PolicyRefusal`: orders and balances (`orders`), activations (`activations`), filing and reading
    complaints (`complaints`), the actions on them (`complaint_actions`), and what systems report about
    them, with no worker needed (`reports`)."""


@asynccontextmanager
async def open_desk(
    temporal: TemporalSettings | None = None,
    ledger: LedgerSettings | None = None,
    policy: PolicySnapshot | None = None,
) -> AsyncIterator[ComplaintDesk]:
    """A desk on the environment's settings (docs/settings.md), for the API and the CLI alike; complaints
    filed through it get `policy`, else the REFUND_DESK_* windows of this process's environment. (The CLI
    passes `policy_in_force()`, which also reads what `make run` saved; a server never does, so that a
    stale `policy.json` left in a checkout cannot change the windows a deployment files under.)"""
    temporal = temporal or TemporalSettings()
    ledger = ledger or LedgerSettings()
    client = await connect(temporal)
    store = Ledger.connect(ledger.database_url)
    try:
        yield ComplaintDesk(
            client=client,
            ledger=store,
            keyring=ledger.keyring(),
            task_queue=temporal.task_queue,
            policy=policy or PolicySettings().snapshot(),
        )
    finally:
        await store.close()
