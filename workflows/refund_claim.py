"""A claim about a rented number: the SMS never came (R5) or the number was invalid (R6).

Intake is checked again here (R3, R4, R6's evidence, R5's completed activation), so a claim started
without the desk meets the same rules. Then support reviews it: approval is a full refund, rejection ends
it with the reason. Support is reminded before the review deadline and the claim is escalated at it, as
R13 does for defects; the customer may withdraw until it is decided (R14).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import LEDGER_CALL, LedgerActivities
    from policy import intake, rules
    from policy.complaint import ComplaintState, FileClaim, Review, Withdraw
    from policy.models import ComplaintKind, ComplaintStatus
    from policy.refusals import PolicyRefusal
    from policy.reports import Report, ReportedAction
    from workflows.common import SUPPORT, notice, opened, refused
    from workflows.patches import ESCALATION_BEFORE_LATE_REVIEW, ONE_ACTIVITY_PER_TRANSITION, WAIT_FOR_FILING
    from workflows.reports import Reported, Reports, remembered


@workflow.defn
class RefundClaimWorkflow(Reports):
    @workflow.init
    def __init__(self, claim: FileClaim) -> None:
        filed_at = workflow.now()
        self.complaint = opened(claim, claim.kind, filed_at, rules.review_deadline(filed_at, claim.policy))
        self._filing = claim
        self._filed = False
        self._handled_reports = remembered([])

    @workflow.run
    async def run(self, claim: FileClaim) -> ComplaintState:
        with self._refusing_the_filing():
            self._check_intake(claim, claim.kind)
            await self._check_activation()
        filed: dict[str, Any] = {
            "deadline": self.complaint.deadline,
            "evidence": [e.ref for e in claim.evidence],
        }
        if workflow.patched(ONE_ACTIVITY_PER_TRANSITION):
            await self._record("filed", claim.filed_by, notice=notice(SUPPORT, "complaint_filed"), **filed)
            self._filed = True
        else:  # as claims filed before ran: the claim counts as filed between the record and the notice
            await self._record("filed", claim.filed_by, **filed)
            self._filed = True
            await self._notify(SUPPORT, "complaint_filed")
        await self._review_period(lambda: self._deadline, self._unreviewed)
        if self._unreviewed():
            await self._escalate()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.complaint

    async def _check_activation(self) -> None:
        """R5: an SMS the ledger saw arrive settles it; a number still waiting will be refunded by R2."""
        if self.complaint.kind is not ComplaintKind.SMS_NOT_RECEIVED:
            return
        activation = await workflow.execute_activity_method(
            LedgerActivities.activation_of_order, self.complaint.order.order_id, **LEDGER_CALL
        )
        try:
            intake.check_activation_for_claim(
                self.complaint.kind,
                None if activation is None else activation.status,
                None if activation is None else activation.expires_at,
            )
        except PolicyRefusal as refusal:
            raise refused(refusal) from None

    # ------------------------------------------------------------------------------- support's action

    @workflow.update
    async def review(self, review: Review) -> ComplaintState:
        """R5/R6: approval is a full refund of the price paid; rejection ends the claim with its reason."""
        await self._after_filing()
        self._validate_review(review)  # again: see ComplaintWorkflow
        if await self._take_review(review):
            self.complaint.settling = True
            await self._record("claim_approved", review.actor, note=review.note)
            await self._issue_refund()
        else:
            await self._notify(self._customer, "claim_rejected", reason_code=review.reason_code)
        return self.complaint

    @review.validator
    def _validate_review(self, review: Review) -> None:
        self._check_review(review)

    # ------------------------------------------------------------------------------ customer's action

    @workflow.update
    async def withdraw(self, withdrawal: Withdraw) -> ComplaintState:
        """R14: the customer may withdraw the claim until it is decided."""
        await self._after_filing()
        self._validate_withdraw(withdrawal)  # again, as for a review
        await self._withdraw(withdrawal)
        return self.complaint

    @withdraw.validator
    def _validate_withdraw(self, withdrawal: Withdraw) -> None:
        self._check("withdraw", withdrawal.actor)

    async def _withdraw(self, withdrawal: Withdraw) -> None:
        await self._close(ComplaintStatus.WITHDRAWN, withdrawal.actor, note=withdrawal.note)

    def _reported(self, report: Report) -> Reported:
        """R14 reported by a system; a claim has no other action a system reports (`Reports` refuses them
        before asking)."""
        if report.action is not ReportedAction.WITHDRAWN:
            raise LookupError(f"a claim has no {report.action.value}")
        withdrawal = Withdraw(actor=report.actor, note=report.note)
        return Reported(partial(self._validate_withdraw, withdrawal), partial(self._withdraw, withdrawal))

    def _unreviewed(self) -> bool:
        """Whether R13's clock still runs: until support decides. Claims started before an approved claim
        stopped it replay as they ran (the clock ran until the claim was final)."""
        if workflow.patched(ESCALATION_BEFORE_LATE_REVIEW):
            return self.complaint.status is ComplaintStatus.UNDER_REVIEW
        return not self.complaint.is_final

    async def _after_filing(self) -> None:
        """An action accepted while the run still checks intake (R5's activity) waits until the claim is
        filed: the trail starts with "filed", and nothing is paid on a claim intake would refuse."""
        if not self._filed and workflow.patched(WAIT_FOR_FILING):
            await workflow.wait_condition(lambda: self._filed)
