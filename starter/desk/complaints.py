"""Filing a complaint (intake, R3-R6, R15) and reading complaints back.

A complaint id names its workflow (`policy.ids`): the workflow id is derived from the order and the kind, so
Temporal itself refuses a second open complaint (R15), and the complaint id adds a random suffix, so that a
later complaint on the same order and kind, once the first is closed, is a new one.

Filing is one call to Temporal: update-with-start, which starts the workflow and sends it the `filed` update,
answered once the complaint is in the ledger. Reading is none: every read is the ledger's projection and
audit trail, which the workflow writes with each event, before the update that caused it answers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ledger.records import ComplaintRecord
from policy import intake, refusals
from policy.complaint import ComplaintState, FileClaim, FileDefectComplaint
from policy.evidence import ACCEPTED_TYPES, EvidenceFile, check_evidence
from policy.ids import complaint_workflow_id, new_complaint_id, workflow_id_of
from policy.models import Actor, ComplaintKind, ComplaintStatus, EvidenceRef, Order, Role
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot
from starter.desk.activations import Activations
from starter.desk.errors import ComplaintNotFound, ComplaintUnresponsive
from starter.desk.plumbing import may_see
from workflows.common import ComplaintWorkflow
from workflows.defect_complaint import DefectComplaintWorkflow
from workflows.refund_claim import RefundClaimWorkflow

COMPLETED_BEFORE_THE_UPDATE = "AcceptedUpdateCompletedWorkflow"
"""The failure type Temporal gives an accepted update whose workflow ended before the update answered."""

EVIDENCE_REF = re.compile(r"ev_[0-9a-f]{32}")
"""An evidence reference as `policy.ids.evidence_ref` makes them: anything else names no attachment, and
never reaches the ledger's query."""


class EvidenceNotFound(Exception):
    """No attachment of this complaint has this reference."""


class Complaints(Activations):
    # ------------------------------------------------------------------------------------------- filing

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
        """Check intake (R3-R6, the product's kind, an order made good already), keep the evidence, and start
        the kind's workflow; a second open complaint of the kind on the order is `complaint_already_open`
        (R15). Returns the complaint as filed, once the ledger has it. A refusal writes nothing: the evidence
        is stored only once the checks have passed, and discarded if the workflow refuses the filing."""
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
            return await self._start(kind, fields, workflow_id)
        except PolicyRefusal:
            await self.ledger.discard_evidence(complaint_id)
            raise

    async def file_defect_complaint(
        self, order: Order, description: str, filed_by: Actor, policy: PolicySnapshot
    ) -> ComplaintState:
        return await self.file(order, ComplaintKind.MAJOR_DEFECT, description, filed_by, policy=policy)

    async def _check_intake(
        self,
        order: Order,
        kind: ComplaintKind,
        description: str,
        evidence: Sequence[EvidenceFile],
        policy: PolicySnapshot,
    ) -> None:
        """The policy's intake, then what only the ledger knows: the order made good already (refunded or
        replaced), and for R5 what its number's activation settled."""
        check_evidence(evidence)
        intake.check_claim(order, kind, description, len(evidence), await self.now(), policy)
        await self.refuse_if_remedied(order)
        if kind is ComplaintKind.SMS_NOT_RECEIVED:
            activation = await self.ledger.activation_of_order(order.order_id)
            activation = activation or await self.unprojected_activation(order.order_id)
            if activation is not None:
                state = activation.state
                intake.check_activation_for_claim(kind, state.status, state.expires_at)

    async def _start(self, kind: ComplaintKind, fields: dict[str, Any], workflow_id: str) -> ComplaintState:
        """Start the kind's workflow under the id that keeps R15 (a closed one's id may be used again) and, in
        the same round trip, send it the `filed` update (update-with-start), which answers with the complaint
        once its "filed" event and projection are in the ledger. A running complaint under the id is
        `complaint_already_open`; a filing the workflow refuses is the refusal its run fails with."""
        options: dict[str, Any] = {
            "id": workflow_id,
            "task_queue": self.task_queue,
            "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            "id_conflict_policy": WorkflowIDConflictPolicy.FAIL,
        }
        start: WithStartWorkflowOperation[Any, ComplaintState]
        if kind is ComplaintKind.MAJOR_DEFECT:
            start = WithStartWorkflowOperation(
                DefectComplaintWorkflow.run, FileDefectComplaint(**fields), **options
            )
        else:
            start = WithStartWorkflowOperation(
                RefundClaimWorkflow.run, FileClaim(kind=kind, **fields), **options
            )
        complaint_id: str = fields["complaint_id"]
        filing = self.client.execute_update_with_start_workflow(
            ComplaintWorkflow.filed, start_workflow_operation=start
        )
        try:
            return await self.patiently(ComplaintUnresponsive(complaint_id), filing)
        except (WorkflowAlreadyStartedError, RPCError) as err:
            # The time-skipping test server answers ALREADY_EXISTS without the details that make the SDK
            # raise WorkflowAlreadyStartedError, as the dev server's answer does.
            if isinstance(err, RPCError) and err.status is not RPCStatusCode.ALREADY_EXISTS:
                raise
            raise _already_open(fields["order"], kind) from None
        except WorkflowUpdateFailedError as err:
            raise await self._refusal_of_the_filing(complaint_id, start, err) from None
        finally:
            _read_out(start)

    async def _refusal_of_the_filing(
        self,
        complaint_id: str,
        start: WithStartWorkflowOperation[Any, ComplaintState],
        failed: WorkflowUpdateFailedError,
    ) -> Exception:
        """Why the workflow refused the filing: the `filed` update's own refusal (its validator checks
        intake; its handler answers with the refusal the run fails with), or, should the run have ended
        before the update could answer, the run's failure."""
        cause = failed.cause
        if isinstance(cause, ApplicationError) and cause.type and cause.type != COMPLETED_BEFORE_THE_UPDATE:
            return PolicyRefusal(cause.type, cause.message)
        handle = await start.workflow_handle()
        try:
            await self.patiently(ComplaintUnresponsive(complaint_id), handle.result())
        except WorkflowFailureError as ended:
            reason = ended.cause
            if isinstance(reason, ApplicationError) and reason.type:
                return PolicyRefusal(reason.type, reason.message)
        return failed

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

    # ------------------------------------------------------------------------------------------ reading

    async def get(self, complaint_id: str) -> ComplaintState:
        """The complaint as it stands, with its audit trail: the ledger's projection, which its workflow
        writes with each event, before the update that caused it answers. No call to Temporal, so no worker
        is needed to read it; a complaint the ledger does not have is not found (a filing returns only once
        its complaint is in the ledger)."""
        record = await self.ledger.get_complaint(complaint_id)
        if record is None:
            raise ComplaintNotFound(complaint_id)
        return record.state

    async def _as_it_stands(self, complaint_id: str, record: ComplaintRecord | None) -> ComplaintState:
        """`get`, once the ledger's record of the complaint (without its trail; None: no such complaint)
        has been read."""
        if record is None:
            raise ComplaintNotFound(complaint_id)
        return await self._with_trail(record)

    async def get_for(self, complaint_id: str, seen_by: Actor) -> ComplaintState:
        """`get`, for someone who may only see their own complaints: another's is not found, answered from
        the order the id names before the complaint is read."""
        if seen_by.role is not Role.CUSTOMER:
            return await self.get(complaint_id)
        return await self._as_it_stands(complaint_id, await self._customers_record(complaint_id, seen_by))

    async def ensure_visible(self, complaint_id: str, seen_by: Actor) -> None:
        """`ComplaintNotFound` unless `seen_by` may see the complaint (a customer: only their own), from
        the ledger alone."""
        if seen_by.role is Role.CUSTOMER:
            if await self._customers_record(complaint_id, seen_by) is None:
                raise ComplaintNotFound(complaint_id)
            return
        if not may_see(seen_by, (await self.as_filed(complaint_id)).customer_id):
            raise ComplaintNotFound(complaint_id)

    async def _customers_record(self, complaint_id: str, customer: Actor) -> ComplaintRecord | None:
        """The ledger's record (without its trail) of a complaint about an order of `customer`'s;
        `ComplaintNotFound` for an id on anyone else's order or on no order at all. Both are one read of the
        order the id names, so the time taken does not tell a customer which ids exist. None: the customer's
        order has no such complaint."""
        try:
            workflow_id_of(complaint_id)
        except ValueError:
            raise ComplaintNotFound(complaint_id) from None
        order = await self.ledger.get_order(complaint_id.split(".", 1)[0])
        if order is None or not may_see(customer, order.customer_id):
            raise ComplaintNotFound(complaint_id)
        record = await self.ledger.get_complaint(complaint_id, events=False)
        if record is not None and not may_see(customer, record.state.customer_id):
            raise ComplaintNotFound(complaint_id)
        return record

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

    async def open_evidence(self, complaint_id: str, ref: str, seen_by: Actor) -> EvidenceFile:
        """R6: an attachment, for support, who reviews it, and for the customer who filed it (another
        customer's complaint is not found, as anywhere). The backend files evidence but does not read it
        back (`forbidden_actor`). The bytes are served only as intake kept them (`evidence_damaged`)."""
        if seen_by.role not in (Role.SUPPORT, Role.CUSTOMER):
            raise PolicyRefusal(
                refusals.FORBIDDEN_ACTOR, "only support and the customer who filed it may open its evidence"
            )
        await self.ensure_visible(complaint_id, seen_by)
        stored = None
        if EVIDENCE_REF.fullmatch(ref):
            stored = await self.ledger.stored_evidence(complaint_id, ref)
        if stored is None:
            raise EvidenceNotFound(f"{ref} on complaint {complaint_id}")
        return intact(*stored)

    async def outcome(self, complaint_id: str) -> ComplaintState:
        """Wait for the complaint to end and return its final state."""
        record = await self.ledger.get_complaint(complaint_id, events=False)
        handle = await self.complaint_handle(complaint_id, record)
        first_run = handle.first_execution_run_id or handle.run_id
        typed = self.client.get_workflow_handle(handle.id, run_id=first_run, result_type=ComplaintState)
        result: ComplaintState = await typed.result()
        return result

    async def as_filed(self, complaint_id: str) -> ComplaintState:
        """For what never changes after filing (the order, its customer): the ledger's projection, without
        its audit trail."""
        record = await self.ledger.get_complaint(complaint_id, events=False)
        if record is None:
            raise ComplaintNotFound(complaint_id)
        return record.state

    async def _with_trail(self, record: ComplaintRecord) -> ComplaintState:
        """The projection `get` read without its audit trail, with the trail."""
        events = await self.ledger.complaint_events(record.state.complaint_id)
        return record.state.model_copy(update={"events": events})

    # ---------------------------------------------------------------------------------------- plumbing

    async def complaint_handle(
        self, complaint_id: str, record: ComplaintRecord | None
    ) -> WorkflowHandle[Any, Any]:
        """The complaint's own chain of runs, from its first (a run continues as new when its history
        reaches its bound): updates reach its latest run and no other workflow's. From its ledger record
        (None: no such complaint)."""
        if record is None:
            raise ComplaintNotFound(complaint_id)
        return self.client.get_workflow_handle(record.workflow_id, first_execution_run_id=record.run_id)

    async def once_in_the_ledger(self, state: ComplaintState) -> None:
        """Return once the ledger's trail (and with it the projection, written in the same transaction)
        holds every event of `state`, an update's answer. Every handler answers after its own event is
        written, so this is nearly always so at the first look; it is not where the answer shows a write
        still on its way: the same remedy chosen twice at once, whose second update writes nothing and
        answers while the first one's event is being written, or an event the run recorded meanwhile (an
        approval after the deadline answers with the remedy choice the run then asks for)."""
        wanted = {event.seq for event in state.events}

        async def projected() -> bool:
            trail = await self.ledger.complaint_events(state.complaint_id)
            return wanted <= {event.seq for event in trail}

        await self.once_projected(projected)

    async def query_complaint(self, complaint_id: str, handle: WorkflowHandle[Any, Any]) -> ComplaintState:
        """The workflow's live state, for tools that want it (the chaos driver); no read of the desk's asks
        it: they read the ledger."""
        return await self.ask_state(ComplaintUnresponsive(complaint_id), handle, ComplaintWorkflow.state)


def _read_out(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """Read the start's own outcome off the operation once the call is over. The SDK sets the call's error
    (a duplicate, a cancel at the desk's patience) there as well as raising it, and asyncio reports an
    error nobody read ("Future exception was never retrieved"); the operation offers no way to look without
    waiting, which a start that never began would do forever."""
    outcome = start._workflow_handle
    if outcome.done() and not outcome.cancelled():
        outcome.exception()


def _already_open(order: Order, kind: ComplaintKind) -> PolicyRefusal:
    return PolicyRefusal(
        refusals.COMPLAINT_ALREADY_OPEN, f"order {order.order_id} already has an open {kind.value} complaint"
    )


def intact(kept: EvidenceRef, data: bytes) -> EvidenceFile:
    """The attachment, if its bytes are still those intake checked: the size and SHA-256 recorded with them
    at filing, of a type intake accepts. A row changed since (on disk, by hand, by a bad restore) is refused
    whole, so that support never opens a file nobody checked."""
    damaged = PolicyRefusal(
        refusals.EVIDENCE_DAMAGED,
        f"evidence {kept.ref} is not the file that was filed: its bytes no longer match the SHA-256, "
        "size or type recorded with them at filing, so it is not served",
    )
    if len(data) != kept.size or hashlib.sha256(data).hexdigest() != kept.sha256:
        raise damaged
    if kept.content_type not in ACCEPTED_TYPES:
        raise damaged
    try:
        return EvidenceFile(name=kept.name, content_type=kept.content_type, data=data)
    except ValidationError:
        raise damaged from None
