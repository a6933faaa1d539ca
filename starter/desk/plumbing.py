"""What every desk call shares: the Temporal client, the ledger, the vault's keyring, and the patience a
caller is given before a silent workflow becomes `Unresponsive`.

Queries and updates go out through typed handler references (`ComplaintWorkflow.state`,
`DefectComplaintWorkflow.review`), so a reader can go from a desk call to the workflow code that answers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.models import Actor, Role
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot
from starter.desk.errors import Unresponsive

T = TypeVar("T")
Arg = TypeVar("Arg")

QUERY_ATTEMPT = timedelta(seconds=5)
"""How long one attempt of a state query waits before it is asked again (see `DeskCore.ask_state`)."""

PROJECTION_POLL = timedelta(milliseconds=10)
"""How often `DeskCore.once_projected` looks at the ledger again."""

Query = Callable[[Any], T]
"""A `@workflow.query` method of a workflow class, e.g. `ComplaintWorkflow.state`."""
Update = UpdateMethodMultiParam[[Any, Arg], T]
"""A `@workflow.update` method of a workflow class, e.g. `DefectComplaintWorkflow.review`."""


@dataclass
class DeskCore:
    """The connections and the patience every part of `ComplaintDesk` uses."""

    client: Client
    ledger: Ledger
    keyring: VaultKeyring
    task_queue: str = "refund-desk"
    policy: PolicySnapshot = field(default_factory=PolicySnapshot)
    """The policy new complaints are filed under (each keeps its own copy for life)."""
    patience: timedelta = timedelta(seconds=30)
    """How long a query or an update may wait for the workflow before `Unresponsive`: without a worker
    Temporal holds them indefinitely, and an HTTP client should not hang with them."""

    async def now(self) -> datetime:
        """The instant intake judges a claim at (R3); the workflow judges it again at its start time."""
        return datetime.now(UTC)

    async def ask_state(
        self, unresponsive: Unresponsive, handle: WorkflowHandle[Any, Any], query: Query[T]
    ) -> T:
        """The workflow's state query within the caller's patience."""
        return await self.patiently(unresponsive, self._ask_until_answered(handle, query))

    async def _ask_until_answered(self, handle: WorkflowHandle[Any, Any], query: Query[T]) -> T:
        """The query, asked again every `QUERY_ATTEMPT` until answered (the caller's patience bounds it). A
        query is read-only, so asking twice is harmless; and a worker without the sticky cache drops a query
        that arrives while it runs a task of the same workflow (sdk-core: "leftover buffered tasks when
        evicting run"), which would otherwise hang until the server gives up."""
        while True:
            try:
                state: T = await handle.query(query, rpc_timeout=QUERY_ATTEMPT)
                return state
            except RPCError as err:
                if err.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                    raise

    async def update(
        self,
        unresponsive: Unresponsive,
        handle: WorkflowHandle[Any, Any],
        update: Update[Arg, T],
        argument: Arg,
    ) -> T:
        """An update, with the workflow's refusal raised as the `PolicyRefusal` it carries."""
        try:
            result: T = await self.patiently(unresponsive, handle.execute_update(update, argument))
            return result
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type:
                raise PolicyRefusal(cause.type, cause.message) from None
            raise

    async def once_projected(self, projected: Callable[[], Awaitable[bool]]) -> None:
        """Return once `projected()` says the ledger shows what an update answered, or after the desk's
        patience: the reads are the ledger's, and a read right after an answer must show it. Nearly always
        true at the first look (an update answers after its own event is written); the exceptions are
        an answer that shows a write still on its way (another handler's, or the run's)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.patience.total_seconds()
        while loop.time() < give_up:
            if await projected():
                return
            await asyncio.sleep(PROJECTION_POLL.total_seconds())

    async def patiently(self, unresponsive: Unresponsive, call: Awaitable[T]) -> T:
        """Without a worker Temporal holds a query or an update indefinitely; a caller waits `patience`."""
        try:
            async with asyncio.timeout(self.patience.total_seconds()):
                return await call
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise unresponsive from None


def update_name(update: Update[Any, Any]) -> str:
    """The name a workflow registers an update under: its method's, since no handler here is renamed (the
    policy's action names are these names, `policy.complaint.Action`)."""
    name: str = update.__name__  # type: ignore[attr-defined]
    return name


def may_see(actor: Actor, customer_id: str) -> bool:
    """A customer sees only their own orders, activations and complaints; the backend and support all."""
    return actor.role is not Role.CUSTOMER or actor.id == customer_id
