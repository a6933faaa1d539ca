"""The one client module: start activations and complaints and send every action, with policy refusals
as exceptions. The HTTP API and the CLI are thin over this.

A complaint id names its workflow: the workflow id is derived from the order and the kind (so Temporal itself
refuses a second open complaint, R15), and the complaint id adds a token so that a later complaint on the
same order and kind, once the first is closed, is a new one. An activation is one per order, so its id is
the order's.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ledger.records import ActivationRecord, Balance, ComplaintRecord
from ledger.repository import Ledger
from ledger.settings import LedgerSettings
from ledger.vault import VaultKeyring
from policy import intake, refusals
from policy.activation import (
    ActivationState,
    CancelActivation,
    SmsReceived,
    StartActivation,
    check_cancel,
    check_sms,
)
from policy.complaint import (
    AccessAnswer,
    AccessRequest,
    Action,
    ChooseRemedy,
    ComplaintState,
    FileClaim,
    FileDefectComplaint,
    Filing,
    MarkFixed,
    OfferReplacement,
    Review,
    ServerCredentials,
    Withdraw,
    already_final,
    check_kind_allows,
)
from policy.evidence import EvidenceFile, check_evidence
from policy.ids import activation_id_of, activation_workflow_id, complaint_workflow_id, order_id_of_activation
from policy.models import (
    Actor,
    ComplaintKind,
    ComplaintStatus,
    Money,
    Order,
    ProductKind,
    RemedyChoice,
    ReplacementOffer,
    Role,
)
from policy.refusals import PolicyRefusal
from policy.settings import PolicySettings, PolicySnapshot
from starter.codec import PayloadKeySettings, encrypting_converter
from starter.settings import TemporalSettings
from workflows import search_attributes
from workflows.activation import NumberActivationWorkflow
from workflows.defect_complaint import DefectComplaintWorkflow
from workflows.refund_claim import RefundClaimWorkflow

T = TypeVar("T")


class ComplaintNotFound(Exception):
    """No complaint has this id (or none the asker may see)."""


class OrderNotFound(Exception):
    """No order has this id (or none the asker may see)."""


class ActivationNotFound(Exception):
    """No activation has this id (or none the asker may see)."""


class Unresponsive(Exception):
    """A workflow did not answer within the desk's patience: no worker is polling, most likely. An action
    sent may still take effect once one is; read the state before sending it again."""


class ComplaintUnresponsive(Unresponsive):
    """The complaint's workflow did not answer in time."""


class ActivationUnresponsive(Unresponsive):
    """The activation's workflow did not answer in time."""


async def connect(settings: TemporalSettings | None = None) -> Client:
    """A Temporal client speaking the project's data converter (pydantic models on the wire), every payload
    encrypted with the payload keys (REFUND_DESK_PAYLOAD_KEYS, else `.data/payload.key`)."""
    settings = settings or TemporalSettings()
    converter = encrypting_converter(PayloadKeySettings().keyring())
    return await Client.connect(settings.address, namespace=settings.namespace, data_converter=converter)


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


QUERY_ATTEMPT = timedelta(seconds=5)
"""How long one attempt of a state query waits before it is asked again (see `ComplaintDesk._ask_state`)."""


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

    async def now(self) -> datetime:
        """The instant intake judges a claim at (R3); the workflow judges it again at its start time."""
        return datetime.now(UTC)

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

    # -------------------------------------------------------------------------------------- activations

    async def start_activation(
        self, order_id: str, phone_number: str, service: str, started_by: Actor
    ) -> tuple[ActivationState, bool]:
        """Start the order's number waiting for its SMS (R1, R2). Idempotent: the same number and service
        again is (activation, False); another for the order is `activation_conflict`."""
        order = await self.get_order(order_id, seen_by=started_by)
        if order.product.kind is not ProductKind.VIRTUAL_NUMBER:
            raise PolicyRefusal(
                refusals.KIND_NOT_FOR_PRODUCT,
                f"order {order_id} is for software; only a virtual number is activated",
            )
        start = StartActivation(
            activation_id=activation_id_of(order_id),
            order=order,
            phone_number=phone_number,
            service=service,
            started_by=started_by,
            policy=self.policy,
        )
        existing = await self.ledger.activation_of_order(order_id)
        if existing is not None:
            return _same_activation(existing.state, start), False
        if await self.ledger.refund_of_order(order_id) is not None:
            raise intake.already_refunded(order)
        workflow_id = activation_workflow_id(order_id)
        try:
            handle = await self.client.start_workflow(
                NumberActivationWorkflow.run,
                start,
                id=workflow_id,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:  # started by a racing request, not projected yet
            state = await self._query_activation(
                start.activation_id, self.client.get_workflow_handle(workflow_id)
            )
            return _same_activation(state, start), False
        return await self._query_activation(start.activation_id, handle), True

    async def get_activation(self, activation_id: str, seen_by: Actor) -> ActivationState:
        """The activation as it stands: from the ledger once it has ended, else from its workflow."""
        record = await self._activation_record(activation_id, seen_by)
        if record.state.is_final:
            return record.state
        return await self._query_activation(activation_id, self._activation_handle(record))

    async def activation_of_order(self, order_id: str) -> ActivationState | None:
        """What the ledger knows of the order's number (for the order's page)."""
        record = await self.ledger.activation_of_order(order_id)
        return None if record is None else record.state

    async def receive_sms(self, activation_id: str, actor: Actor, text: str) -> ActivationState:
        """R1: the SMS came; a retry of the same SMS answers with the activation as it is."""
        sms = SmsReceived(actor=actor, text=text)
        record = await self._activation_record(activation_id, actor)
        if record.state.is_final and check_sms(record.state, sms):
            return record.state
        return await self._act_on_activation(record, "receive_sms", sms)

    async def cancel_activation(self, activation_id: str, actor: Actor) -> ActivationState:
        """R2: cancel before an SMS came; the full price goes back once, however often this is called."""
        cancel = CancelActivation(actor=actor)
        record = await self._activation_record(activation_id, actor)
        if record.state.is_final and check_cancel(record.state, cancel):
            return record.state
        return await self._act_on_activation(record, "cancel", cancel)

    async def _activation_record(self, activation_id: str, seen_by: Actor) -> ActivationRecord:
        """The activation's ledger record, or (just started, not projected yet) its workflow's state."""
        order_id = order_id_of_activation(activation_id)
        if order_id is None:
            raise ActivationNotFound(activation_id)
        record = await self.ledger.activation_of_order(order_id) or await self._unprojected(order_id)
        if record is None or record.state.activation_id != activation_id:
            raise ActivationNotFound(activation_id)
        if not _may_see(seen_by, record.state.customer_id):
            raise ActivationNotFound(activation_id)
        return record

    async def _unprojected(self, order_id: str) -> ActivationRecord | None:
        handle = self.client.get_workflow_handle(activation_workflow_id(order_id))
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        run = self.client.get_workflow_handle(handle.id, run_id=described.run_id)
        state = await self._query_activation(activation_id_of(order_id), run)
        return ActivationRecord(workflow_id=handle.id, run_id=described.run_id, state=state)

    def _activation_handle(self, record: ActivationRecord) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(record.workflow_id, run_id=record.run_id)

    async def _query_activation(
        self, activation_id: str, handle: WorkflowHandle[Any, Any]
    ) -> ActivationState:
        return await self._patiently(
            ActivationUnresponsive(activation_id), self._ask_state(handle, ActivationState)
        )

    async def _act_on_activation(
        self, record: ActivationRecord, update: str, argument: Any
    ) -> ActivationState:
        """The update, where the workflow still runs; a final activation answers from the ledger's copy,
        with the policy's own refusal."""
        activation_id = record.state.activation_id
        try:
            return await self._update(
                ActivationUnresponsive(activation_id),
                self._activation_handle(record),
                update,
                argument,
                ActivationState,
            )
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
        # It ended between the ledger read and the update: answer as for any final activation.
        final = await self._activation_record(activation_id, argument.actor)
        guard = check_sms if isinstance(argument, SmsReceived) else check_cancel
        guard(final.state, argument)
        return final.state

    # -------------------------------------------------------------------------------------------- start

    async def file_complaint(
        self,
        order_id: str,
        kind: ComplaintKind,
        description: str,
        filed_by: Actor,
        evidence: Sequence[EvidenceFile] = (),
    ) -> ComplaintState:
        """Intake for every kind: the order must exist and belong to the customer filing."""
        order = await self.get_order(order_id, seen_by=filed_by)
        return await self.file(order, kind, description, filed_by, evidence=evidence)

    async def file(
        self,
        order: Order,
        kind: ComplaintKind,
        description: str,
        filed_by: Actor,
        *,
        evidence: Sequence[EvidenceFile] = (),
        policy: PolicySnapshot | None = None,
    ) -> ComplaintState:
        """Check intake (R3-R6, the product's kind, an order refunded already), keep the evidence, and start
        the kind's workflow; a second open complaint of the kind on the order is `complaint_already_open`
        (R15). A refusal writes nothing: the evidence is stored only once the checks have passed."""
        policy = policy or self.policy
        await self._check_intake(order, kind, description, evidence, policy)
        complaint_id = new_complaint_id(order.order_id, kind)
        workflow_id = complaint_workflow_id(order.order_id, kind)
        if evidence:
            await self._refuse_if_open(workflow_id, order, kind)
        refs = await self.ledger.store_evidence(complaint_id, evidence) if evidence else []
        fields: dict[str, Any] = {
            "complaint_id": complaint_id,
            "order": order,
            "description": description,
            "filed_by": filed_by,
            "policy": policy,
            "evidence": refs,
        }
        try:
            if kind is ComplaintKind.MAJOR_DEFECT:
                handle = await self._start(
                    DefectComplaintWorkflow.run, FileDefectComplaint(**fields), workflow_id
                )
            else:
                handle = await self._start(
                    RefundClaimWorkflow.run, FileClaim(kind=kind, **fields), workflow_id
                )
        except WorkflowAlreadyStartedError:
            await self.ledger.discard_evidence(complaint_id)
            raise _already_open(order, kind) from None
        return await self._query(complaint_id, handle)

    async def _check_intake(
        self,
        order: Order,
        kind: ComplaintKind,
        description: str,
        evidence: Sequence[EvidenceFile],
        policy: PolicySnapshot,
    ) -> None:
        """The policy's intake, then what only the ledger knows: a refund already made for the order, and
        for R5 what its number's activation settled."""
        check_evidence(evidence)
        intake.check_claim(order, kind, description, len(evidence), await self.now(), policy)
        if await self.ledger.refund_of_order(order.order_id) is not None:
            raise intake.already_refunded(order)
        if kind is ComplaintKind.SMS_NOT_RECEIVED:
            activation = await self.ledger.activation_of_order(order.order_id)
            activation = activation or await self._unprojected(order.order_id)
            if activation is not None:
                state = activation.state
                intake.check_activation_for_claim(kind, state.status, state.expires_at)

    async def file_defect_complaint(
        self, order: Order, description: str, filed_by: Actor, policy: PolicySnapshot
    ) -> ComplaintState:
        return await self.file(order, ComplaintKind.MAJOR_DEFECT, description, filed_by, policy=policy)

    async def _start(self, run: Any, filing: Filing, workflow_id: str) -> WorkflowHandle[Any, Any]:
        handle: WorkflowHandle[Any, Any] = await self.client.start_workflow(
            run,
            filing,
            id=workflow_id,
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        return handle

    async def _refuse_if_open(self, workflow_id: str, order: Order, kind: ComplaintKind) -> None:
        """R15 before anything is stored; the start itself is the last word if two filings race."""
        try:
            described = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return
            raise
        if described.status is WorkflowExecutionStatus.RUNNING:
            raise _already_open(order, kind)

    # -------------------------------------------------------------------------------------------- read

    async def get(self, complaint_id: str) -> ComplaintState:
        """The complaint as it stands: from the ledger once it has its outcome (no worker needed to read it),
        else from its workflow."""
        record = await self.ledger.get_complaint(complaint_id, events=False)
        if record is not None and record.state.is_final:
            return await self._with_trail(record)
        handle = await self._handle(complaint_id, record)
        try:
            return await self._query(complaint_id, handle)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND or record is None:
                raise
        return await self._with_trail(record)

    async def _with_trail(self, record: ComplaintRecord) -> ComplaintState:
        """The projection `get` read without its audit trail, with the trail."""
        events = await self.ledger.complaint_events(record.state.complaint_id)
        return record.state.model_copy(update={"events": events})

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
        record = await self.ledger.get_complaint(complaint_id, events=False)
        return record.state if record is not None else await self.get(complaint_id)

    async def outcome(self, complaint_id: str) -> ComplaintState:
        """Wait for the complaint to end and return its final state."""
        handle = await self._handle(complaint_id, await self.ledger.get_complaint(complaint_id, events=False))
        typed = self.client.get_workflow_handle(handle.id, run_id=handle.run_id, result_type=ComplaintState)
        result: ComplaintState = await typed.result()
        return result

    # ------------------------------------------------------------------------------------------ support

    async def review(self, complaint_id: str, review: Review) -> ComplaintState:
        return await self._act(complaint_id, "review", review)

    async def request_access(
        self, complaint_id: str, actor: Actor, scope: str, reason: str
    ) -> ComplaintState:
        request = AccessRequest(actor=actor, scope=scope, reason=reason)
        return await self._act(complaint_id, "request_access", request)

    async def mark_fixed(self, complaint_id: str, actor: Actor, note: str = "") -> ComplaintState:
        return await self._act(complaint_id, "mark_fixed", MarkFixed(actor=actor, note=note))

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
        return await self._act(complaint_id, "offer_replacement", request)

    # ----------------------------------------------------------------------------------------- customer

    async def grant_access(
        self, complaint_id: str, actor: Actor, credentials: ServerCredentials
    ) -> ComplaintState:
        """Seal the credentials here, so only ciphertext ever reaches Temporal (and then the vault)."""
        sealed = self.keyring.seal(credentials, context=complaint_id)
        answer = AccessAnswer(actor=actor, grant=True, credentials=sealed)
        return await self._act(complaint_id, "answer_access", answer)

    async def refuse_access(self, complaint_id: str, actor: Actor) -> ComplaintState:
        answer = AccessAnswer(actor=actor, grant=False)
        return await self._act(complaint_id, "answer_access", answer)

    async def choose_remedy(self, complaint_id: str, actor: Actor, choice: RemedyChoice) -> ComplaintState:
        request = ChooseRemedy(actor=actor, choice=choice)
        return await self._act(complaint_id, "choose_remedy", request)

    async def withdraw(self, complaint_id: str, actor: Actor, note: str = "") -> ComplaintState:
        return await self._act(complaint_id, "withdraw", Withdraw(actor=actor, note=note))

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
        return await self._patiently(
            ComplaintUnresponsive(complaint_id), self._ask_state(handle, ComplaintState)
        )

    async def _ask_state(self, handle: WorkflowHandle[Any, Any], result_type: type[T]) -> T:
        """The `state` query, asked again every `QUERY_ATTEMPT` until answered (the caller's patience
        bounds it). A query is read-only, so asking twice is harmless; and a worker without the sticky cache
        drops a query that arrives while it runs a task of the same workflow (sdk-core: "leftover buffered
        tasks when evicting run"), which would otherwise hang until the server gives up (issue 6: 11 of 40
        concurrent reads of one complaint, 30 s each)."""
        while True:
            try:
                state: T = await handle.query("state", result_type=result_type, rpc_timeout=QUERY_ATTEMPT)
                return state
            except RPCError as err:
                if err.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                    raise

    async def _act(self, complaint_id: str, action: Action, argument: Any) -> ComplaintState:
        """Send `action` (the update of that name) unless the ledger already shows why it must fail."""
        record = await self.ledger.get_complaint(complaint_id, events=False)
        if record is not None:
            if record.state.is_final:
                raise already_final(record.state)
            check_kind_allows(record.state.kind, action)
        handle = await self._handle(complaint_id, record)
        if record is None:
            check_kind_allows((await self._query(complaint_id, handle)).kind, action)
        try:
            return await self._update(
                ComplaintUnresponsive(complaint_id), handle, action, argument, ComplaintState
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:  # it ended between the ledger read and the update
                raise already_final(await self.get(complaint_id)) from None
            raise

    async def _update(
        self,
        unresponsive: Unresponsive,
        handle: WorkflowHandle[Any, Any],
        name: str,
        argument: Any,
        result_type: type[T],
    ) -> T:
        """An update by name, with the workflow's refusal raised as the `PolicyRefusal` it carries."""
        try:
            return await self._patiently(
                unresponsive, handle.execute_update(name, argument, result_type=result_type)
            )
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type:
                raise PolicyRefusal(cause.type, cause.message) from None
            raise

    async def _patiently(self, unresponsive: Unresponsive, call: Awaitable[T]) -> T:
        """Without a worker Temporal holds a query or an update indefinitely; a caller waits `patience`."""
        try:
            async with asyncio.timeout(self.patience.total_seconds()):
                return await call
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise unresponsive from None


def _same_activation(existing: ActivationState, start: StartActivation) -> ActivationState:
    """A repeated start is answered with the activation; a different number for the order is a conflict."""
    if (existing.phone_number, existing.service) != (start.phone_number, start.service):
        raise PolicyRefusal(
            refusals.ACTIVATION_CONFLICT,
            f"order {start.order.order_id} already has an activation ({existing.phone_number} for "
            f"{existing.service}); an order rents one number",
        )
    return existing


def _already_open(order: Order, kind: ComplaintKind) -> PolicyRefusal:
    return PolicyRefusal(
        refusals.COMPLAINT_ALREADY_OPEN, f"order {order.order_id} already has an open {kind.value} complaint"
    )


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
