"""What systems report about a complaint, sent as the `report` signal: durable even while no worker runs.

An update waits for a worker (the desk's patience, then `complaint_unresponsive`); a signal is recorded by
Temporal at once and taken by the next worker. So a system reporting a fact (a deployment pipeline's fix, a
hosting panel's access decision) sends a report and goes on. The desk refuses at once what the complaint's
projection already shows for certain, with the same exceptions and codes as the update's path; whatever
else the policy refuses, the workflow records in the audit trail (`report_refused`), since nobody waits for
the signal's answer (`workflows.reports`).
"""

from __future__ import annotations

import asyncio

from temporalio.service import RPCError, RPCStatusCode

from policy.complaint import ACTOR_ROLE, ComplaintState, already_final, check_kind_allows
from policy.credentials import ServerCredentials
from policy.models import Actor, ComplaintKind
from policy.refusals import FORBIDDEN_ACTOR, PolicyRefusal
from policy.reports import ACTION_OF_REPORT, Report, ReportedAction, new_report_id
from starter.desk.complaints import Complaints
from starter.desk.errors import ComplaintNotFound
from starter.desk.plumbing import may_see
from workflows.defect_complaint import DefectComplaintWorkflow
from workflows.refund_claim import RefundClaimWorkflow

SIGNAL_ATTEMPTS = 5
"""Signals sent while no run shows (a run continuing as new) before the desk gives up."""


class ComplaintReports(Complaints):
    async def report(
        self,
        complaint_id: str,
        actor: Actor,
        action: ReportedAction,
        *,
        note: str = "",
        credentials: ServerCredentials | None = None,
        report_id: str | None = None,
    ) -> str:
        """Report `action` on the complaint as `actor`, and return the report's id (a new one unless
        given: a sender that retries gives the same id, and the complaint takes it once). Credentials are
        sealed here, for this complaint, as `grant_access` seals them. Refused at once: no such complaint or
        another customer's (`ComplaintNotFound`), an ended complaint, an action its kind does not have, or
        one the actor's role may not take (`PolicyRefusal`). It needs no worker."""
        record = await self.ledger.get_complaint(complaint_id, events=False)
        if record is None or not may_see(actor, record.state.customer_id):
            raise ComplaintNotFound(complaint_id)
        state = record.state
        if (refusal := refused_for_certain(state, action, actor)) is not None:
            raise refusal
        sealed = None if credentials is None else self.keyring.seal(credentials, context=complaint_id)
        report = Report(
            report_id=report_id or new_report_id(),
            complaint_id=complaint_id,
            action=action,
            actor=actor,
            note=note,
            credentials=sealed,
        )
        handle = await self.complaint_handle(complaint_id, record)
        signal = (
            DefectComplaintWorkflow.report
            if state.kind is ComplaintKind.MAJOR_DEFECT
            else RefundClaimWorkflow.report
        )
        for attempt in range(SIGNAL_ATTEMPTS):
            try:
                await handle.signal(signal, report)
                return report.report_id
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND or attempt == SIGNAL_ATTEMPTS - 1:
                    raise
            # No run to signal: the complaint ended between the ledger read and the signal, or its run
            # was continuing as new (a server may show neither run for a moment); the next run takes it.
            if (now := await self.get(complaint_id)).is_final:
                raise already_final(now) from None
            await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable: the last attempt returns or raises")


def refused_for_certain(state: ComplaintState, action: ReportedAction, actor: Actor) -> PolicyRefusal | None:
    """What the projection shows for certain the policy refuses, as the update's path refuses it: an ended
    complaint, an action its kind does not have, another role's action. The rest (the status, the deadline)
    may change before a worker takes the report, and is the workflow's to judge."""
    if state.is_final:
        return already_final(state)
    policy_action = ACTION_OF_REPORT[action]
    try:
        check_kind_allows(state.kind, policy_action)
    except PolicyRefusal as refusal:
        return refusal
    role = ACTOR_ROLE[policy_action]
    if actor.role is not role:
        said = action.value.replace("_", " ")
        return PolicyRefusal(FORBIDDEN_ACTOR, f"only {role.value} may report {said}")
    return None
