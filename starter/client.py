"""The one client module: start complaints and send every action, with policy refusals as exceptions.

The HTTP API and the CLI are thin over this. A complaint id names its workflow: the workflow id is derived
from the order and the kind (so Temporal itself refuses a second open complaint, R15), and the complaint id
adds a token so that a later complaint on the same order and kind, once the first is closed, is a new one.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ledger.records import Balance, ComplaintRecord
from ledger.repository import Ledger
from ledger.settings import LedgerSettings
from ledger.vault import VaultKeyring
from policy import refusals
from policy.complaint import (
    AccessAnswer,
    AccessRequest,
    ChooseRemedy,
    ComplaintState,
    FileDefectComplaint,
    MarkFixed,
    OfferReplacement,
    Review,
    ServerCredentials,
    Withdraw,
    already_final,
)
from policy.models import (
    Actor,
    ComplaintKind,
    ComplaintStatus,
    Money,
    Order,
    RemedyChoice,
    ReplacementOffer,
    Role,
)
from policy.refusals import PolicyRefusal
from policy.settings import PolicySettings, PolicySnapshot
from starter.settings import TemporalSettings
from workflows import search_attributes
from workflows.defect_complaint import DefectComplaintWorkflow


class ComplaintNotFound(Exception):
    """No complaint has this id (or none the asker may see)."""


class OrderNotFound(Exception):
    """No order has this id (or none the asker may see)."""


class ComplaintUnresponsive(Exception):
    """The complaint's workflow did not answer within the desk's patience: no worker is polling, most
    likely. An action sent may still take effect once one is; read the complaint before sending it again."""


COMPLAINT_KIND_UNAVAILABLE = "complaint_kind_unavailable"


async def connect(settings: TemporalSettings | None = None) -> Client:
    """A Temporal client speaking the project's data converter (pydantic models on the wire)."""
    settings = settings or TemporalSettings()
    return await Client.connect(
        settings.address, namespace=settings.namespace, data_converter=pydantic_data_converter
    )


async def register_search_attributes(client: Client) -> None:
    """Tell the server about the complaints' search attributes (idempotent: known ones are skipped)."""
    known: set[str] = set()
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(listed.custom_attributes)
    except RPCError as err:  # the time-skipping test server cannot list, only add
        if err.status is not RPCStatusCode.UNIMPLEMENTED:
            raise
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in search_attributes.ALL_KEYS
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )


def complaint_workflow_id(order_id: str, kind: ComplaintKind) -> str:
    return f"complaint.{order_id}.{kind.value}"


def new_complaint_id(order_id: str, kind: ComplaintKind) -> str:
    return f"{order_id}.{kind.value}.{secrets.token_hex(4)}"


def workflow_id_of(complaint_id: str) -> str:
    parts = complaint_id.split(".")
    if len(parts) != 3:
        raise ComplaintNotFound(complaint_id)
    try:
        kind = ComplaintKind(parts[1])
    except ValueError:
        raise ComplaintNotFound(complaint_id) from None
    return complaint_workflow_id(parts[0], kind)


@dataclass
class ComplaintDesk:
    """Typed calls for the backend, support and customers. Needs the ledger to find a complaint's run."""

    client: Client
    ledger: Ledger
    keyring: VaultKeyring
    task_queue: str = "refund-desk"
    policy: PolicySnapshot = field(default_factory=PolicySnapshot)
    """The policy new complaints are filed under (each keeps its own copy for life)."""
    patience: timedelta = timedelta(seconds=30)
    """How long a query or an update may wait for the workflow before `ComplaintUnresponsive`: without a
    worker Temporal holds them indefinitely, and an HTTP client should not hang with them."""

    # ------------------------------------------------------------------------------------------- orders

    async def record_order(self, order: Order) -> tuple[Order, bool]:
        """Idempotent: the same order again is (order, False); a different one raises `OrderConflict`."""
        return await self.ledger.record_order(order)

    async def get_order(self, order_id: str, *, seen_by: Actor) -> Order:
        """The order, if `seen_by` may see it: a customer sees only their own (others: not found)."""
        order = await self.ledger.get_order(order_id)
        if order is None or not _may_see(seen_by, order.customer_id):
            raise OrderNotFound(order_id)
        return order

    async def balance(self, customer_id: str) -> Balance:
        return await self.ledger.balance(customer_id)

    # -------------------------------------------------------------------------------------------- start

    async def file_complaint(
        self, order_id: str, kind: ComplaintKind, description: str, filed_by: Actor
    ) -> ComplaintState:
        """Intake for every kind: the order must exist and belong to the customer filing."""
        order = await self.get_order(order_id, seen_by=filed_by)
        if kind is not ComplaintKind.MAJOR_DEFECT:
            raise PolicyRefusal(
                COMPLAINT_KIND_UNAVAILABLE,
                f"{kind.value} claims are not handled yet; only major_defect complaints can be filed",
            )
        return await self.file_defect_complaint(order, description, filed_by, self.policy)

    async def file_defect_complaint(
        self, order: Order, description: str, filed_by: Actor, policy: PolicySnapshot
    ) -> ComplaintState:
        """Start a `DefectComplaintWorkflow`; a second open one for the order is `complaint_already_open`."""
        kind = ComplaintKind.MAJOR_DEFECT
        complaint = FileDefectComplaint(
            complaint_id=new_complaint_id(order.order_id, kind),
            order=order,
            description=description,
            filed_by=filed_by,
            policy=policy,
        )
        try:
            handle = await self.client.start_workflow(
                DefectComplaintWorkflow.run,
                complaint,
                id=complaint_workflow_id(order.order_id, kind),
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:
            raise PolicyRefusal(
                refusals.COMPLAINT_ALREADY_OPEN,
                f"order {order.order_id} already has an open {kind.value} complaint",
            ) from None
        return await self._query(complaint.complaint_id, handle)

    # -------------------------------------------------------------------------------------------- read

    async def get(self, complaint_id: str) -> ComplaintState:
        """The complaint as it stands: from the ledger once it has its outcome (no worker needed to read it),
        else from its workflow."""
        record = await self.ledger.get_complaint(complaint_id)
        if record is not None and record.state.is_final:
            return record.state
        handle = await self._handle(complaint_id, record)
        try:
            return await self._query(complaint_id, handle)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND or record is None:
                raise
        return record.state

    async def ensure_visible(self, complaint_id: str, seen_by: Actor) -> None:
        """`ComplaintNotFound` unless `seen_by` may see the complaint (a customer: only their own)."""
        if not _may_see(seen_by, (await self._as_filed(complaint_id)).customer_id):
            raise ComplaintNotFound(complaint_id)

    async def get_for(self, complaint_id: str, seen_by: Actor) -> ComplaintState:
        """`get`, for someone who may only see their own complaints: another's is not found."""
        state = await self.get(complaint_id)
        if not _may_see(seen_by, state.customer_id):
            raise ComplaintNotFound(complaint_id)
        return state

    async def list_complaints(
        self,
        *,
        status: ComplaintStatus | None = None,
        kind: ComplaintKind | None = None,
        customer_id: str | None = None,
        order_id: str | None = None,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
    ) -> list[ComplaintState]:
        """Newest first from the ledger's projection (without events), keyset-paginated by `after`."""
        records = await self.ledger.list_complaints(
            status=None if status is None else status.value,
            kind=None if kind is None else kind.value,
            customer_id=customer_id,
            order_id=order_id,
            limit=limit,
            after=after,
        )
        return [record.state for record in records]

    async def _as_filed(self, complaint_id: str) -> ComplaintState:
        """For what never changes after filing (the order, its customer): the ledger's projection answers
        without asking the workflow; only a complaint not projected yet costs a query."""
        record = await self.ledger.get_complaint(complaint_id)
        return record.state if record is not None else await self.get(complaint_id)

    async def outcome(self, complaint_id: str) -> ComplaintState:
        """Wait for the complaint to end and return its final state."""
        handle = await self._handle(complaint_id, await self.ledger.get_complaint(complaint_id))
        typed = self.client.get_workflow_handle_for(
            DefectComplaintWorkflow.run, handle.id, run_id=handle.run_id
        )
        return await typed.result()

    # ------------------------------------------------------------------------------------------ support

    async def review(self, complaint_id: str, review: Review) -> ComplaintState:
        return await self._act(complaint_id, DefectComplaintWorkflow.review, review)

    async def request_access(
        self, complaint_id: str, actor: Actor, scope: str, reason: str
    ) -> ComplaintState:
        request = AccessRequest(actor=actor, scope=scope, reason=reason)
        return await self._act(complaint_id, DefectComplaintWorkflow.request_access, request)

    async def mark_fixed(self, complaint_id: str, actor: Actor, note: str = "") -> ComplaintState:
        return await self._act(
            complaint_id, DefectComplaintWorkflow.mark_fixed, MarkFixed(actor=actor, note=note)
        )

    async def replacement_offer(
        self, complaint_id: str, sku: str, name: str, value: Decimal, currency: str | None = None
    ) -> ReplacementOffer:
        """A product support may offer, priced in `currency`, else in that of the complaint's order."""
        order = (await self._as_filed(complaint_id)).order
        worth = Money(amount=value, currency=currency or order.price.currency)
        return ReplacementOffer(sku=sku, name=name, value=worth)

    async def offer_replacement(
        self, complaint_id: str, actor: Actor, offer: ReplacementOffer
    ) -> ComplaintState:
        request = OfferReplacement(actor=actor, offer=offer)
        return await self._act(complaint_id, DefectComplaintWorkflow.offer_replacement, request)

    # ----------------------------------------------------------------------------------------- customer

    async def grant_access(
        self, complaint_id: str, actor: Actor, credentials: ServerCredentials
    ) -> ComplaintState:
        """Seal the credentials here, so only ciphertext ever reaches Temporal (and then the vault)."""
        sealed = self.keyring.seal(credentials, context=complaint_id)
        answer = AccessAnswer(actor=actor, grant=True, credentials=sealed)
        return await self._act(complaint_id, DefectComplaintWorkflow.answer_access, answer)

    async def refuse_access(self, complaint_id: str, actor: Actor) -> ComplaintState:
        answer = AccessAnswer(actor=actor, grant=False)
        return await self._act(complaint_id, DefectComplaintWorkflow.answer_access, answer)

    async def choose_remedy(self, complaint_id: str, actor: Actor, choice: RemedyChoice) -> ComplaintState:
        request = ChooseRemedy(actor=actor, choice=choice)
        return await self._act(complaint_id, DefectComplaintWorkflow.choose_remedy, request)

    async def withdraw(self, complaint_id: str, actor: Actor, note: str = "") -> ComplaintState:
        return await self._act(
            complaint_id, DefectComplaintWorkflow.withdraw, Withdraw(actor=actor, note=note)
        )

    async def reveal_credentials(self, credentials_ref: str) -> ServerCredentials:
        """For the technician who needs the access: opens the vault entry behind a reference."""
        found = await self.ledger.sealed_secret(credentials_ref)
        if found is None:
            raise KeyError(credentials_ref)
        complaint_id, sealed = found
        return self.keyring.open(sealed, context=complaint_id)

    # ---------------------------------------------------------------------------------------- plumbing

    async def _handle(self, complaint_id: str, record: ComplaintRecord | None) -> WorkflowHandle[Any, Any]:
        """The complaint's own run: from its ledger record, or (just filed, not projected yet) the latest."""
        workflow_id = workflow_id_of(complaint_id)
        if record is not None:
            return self.client.get_workflow_handle(record.workflow_id, run_id=record.run_id)
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            state = await self._query(complaint_id, handle)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise ComplaintNotFound(complaint_id) from None
            raise
        if state.complaint_id != complaint_id:
            raise ComplaintNotFound(complaint_id)
        description = await handle.describe()
        return self.client.get_workflow_handle(workflow_id, run_id=description.run_id)

    async def _query(self, complaint_id: str, handle: WorkflowHandle[Any, Any]) -> ComplaintState:
        try:
            async with asyncio.timeout(self.patience.total_seconds()):
                return await handle.query(DefectComplaintWorkflow.state)
        except TimeoutError:
            raise ComplaintUnresponsive(complaint_id) from None

    async def _act(self, complaint_id: str, update: Any, argument: Any) -> ComplaintState:
        record = await self.ledger.get_complaint(complaint_id)
        if record is not None and record.state.is_final:
            raise already_final(record.state)
        handle = await self._handle(complaint_id, record)
        try:
            async with asyncio.timeout(self.patience.total_seconds()):
                result: ComplaintState = await handle.execute_update(update, argument)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise ComplaintUnresponsive(complaint_id) from None
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type:
                raise PolicyRefusal(cause.type, cause.message) from None
            raise
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:  # it ended between the ledger read and the update
                raise already_final(await self.get(complaint_id)) from None
            raise
        return result


def _may_see(actor: Actor, customer_id: str) -> bool:
    return actor.role is not Role.CUSTOMER or actor.id == customer_id


@asynccontextmanager
async def open_desk(
    temporal: TemporalSettings | None = None,
    ledger: LedgerSettings | None = None,
    policy: PolicySnapshot | None = None,
) -> AsyncIterator[ComplaintDesk]:
    """A desk on the environment's settings (API.md "Running"), for the API and the CLI alike."""
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
