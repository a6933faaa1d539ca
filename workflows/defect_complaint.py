"""A major-defect complaint, from filing to its one outcome (docs/policy.md R7-R14, R16).

The run method reads as the policy: the company may rectify until the deadline (R7), which an access
request pauses (R10); support is reminded before it (R13); at the deadline an unreviewed complaint is
escalated (R13) and an approved, unfixed deficiency earns the customer's remedy (R12). People act through
updates whose validators refuse what the policy does not allow, so a refused action changes nothing; the
server access updates (R9, R10) are inherited from `workflows.access`, the rest are defined here.

Support can grow a complaint's history for as long as it stays open (offers, access requests), so a run
whose history reaches `history_events_per_run` continues as new at its next wait, carrying the complaint
over; the new run picks up from its status, each phase reading its deadlines from the state.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import LEDGER_CALL, LedgerActivities
    from ledger.records import ReplacementIssue
    from policy import refusals, rules
    from policy.complaint import (
        AccessAnswer,
        ChooseRemedy,
        ComplaintState,
        FileDefectComplaint,
        MarkFixed,
        OfferReplacement,
        Review,
        Withdraw,
        check_remedy_change,
    )
    from policy.models import (
        SYSTEM,
        ComplaintKind,
        ComplaintStatus,
        RemedyChoice,
        ReplacementOffer,
    )
    from policy.refusals import PolicyRefusal
    from policy.reports import Report, ReportedAction
    from workflows.access import AccessUpdates
    from workflows.common import SUPPORT, notice, opened, refused
    from workflows.patches import INTAKE_IN_WORKFLOW, REPEATED_CHOICE_UNRECORDED
    from workflows.refunds import remedy_refusal
    from workflows.reports import Reported, Reports, remembered


@workflow.defn
class DefectComplaintWorkflow(AccessUpdates, Reports):
    continues_as_new = True
    _filing: FileDefectComplaint

    @workflow.init
    def __init__(self, filing: FileDefectComplaint) -> None:
        self._filing = filing
        self._handled_updates = set()
        self._handled_reports = remembered([])
        if filing.continued is not None and workflow.info().continued_run_id is not None:
            self.complaint = filing.continued.model_copy(deep=True)
            self._handled_updates = set(filing.handled_updates)
            self._handled_reports = remembered(filing.handled_reports)
            self._filed = True
            return
        filed_at = workflow.now()
        deadline = rules.rectification_deadline(filed_at, filing.policy, timedelta(0))
        self.complaint = opened(filing, ComplaintKind.MAJOR_DEFECT, filed_at, deadline)

    @workflow.run
    async def run(self, filing: FileDefectComplaint) -> ComplaintState:
        if filing.continued is None:
            await self._file(filing)
        elif workflow.info().continued_run_id is None:
            with self._refusing_the_filing():
                raise refused(
                    PolicyRefusal(
                        refusals.NOT_A_CONTINUATION,
                        "only a run that continued as new carries a complaint's state; file a complaint "
                        "instead",
                    )
                )
        await self._rectification_period()
        if not self.complaint.is_final:
            await self._after_deadline()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.complaint

    # ------------------------------------------------------------------------------------ the policy

    async def _file(self, filing: FileDefectComplaint) -> None:
        """R3, R4 and R15 at the instant of filing, then the first event of the trail."""
        if workflow.patched(INTAKE_IN_WORKFLOW):
            with self._refusing_the_filing():
                self._check_intake(filing, ComplaintKind.MAJOR_DEFECT)
        await self._record(
            "filed",
            filing.filed_by,
            deadline=self.complaint.deadline,
            notice=notice(SUPPORT, "complaint_filed"),
        )
        self._filed = True

    async def _rectification_period(self) -> None:
        """R7: the company may rectify until the deadline; R10 pauses it; R13 reminds support before it."""
        while not self.complaint.is_final:
            if self._awaiting_access():
                await self._await_access_answer()
                continue
            await self._review_period(lambda: self._deadline, self._clock_running)
            if not self._awaiting_access():
                return  # the deadline has come

    def _awaiting_access(self) -> bool:
        return self.complaint.status is ComplaintStatus.AWAITING_ACCESS

    def _clock_running(self) -> bool:
        return not self.complaint.is_final and not self._awaiting_access()

    async def _await_access_answer(self) -> None:
        """R9/R10: the customer answers within `access_response_window`, or silence counts as refusal."""
        access = self._access

        def answered() -> bool:
            return access.answered_at is not None or self.complaint.is_final

        while not await self._wait_until(access.answer_due, answered, or_continue=True):
            if not self._continue_requested:
                break
            await self._continue_as_new()
        if self.complaint.is_final:
            return
        if not answered():
            await self._close(ComplaintStatus.ACCESS_REFUSED, SYSTEM, reason_code="access_not_answered")
            return
        # The answer is in; its handler is still filing the credentials in the vault.
        await workflow.wait_condition(
            lambda: self.complaint.status is not ComplaintStatus.AWAITING_ACCESS or access.answered_at is None
        )

    async def _after_deadline(self) -> None:
        """R13: unreviewed at the deadline means escalation; R12: approved and unfixed means a remedy."""
        if self.complaint.status is ComplaintStatus.UNDER_REVIEW:
            await self._escalate()
        elif self.complaint.status is ComplaintStatus.ESCALATED:  # escalated by the run this one continues
            await self._await_escalation_decided()
        if self.complaint.is_final:
            return
        await self._remedy()

    async def _remedy(self) -> None:
        """R12: the customer's choice of a full refund or a replacement; a refund if they do not choose."""
        if self.complaint.remedy_choice is None:
            if self.complaint.remedy_choice_due is None:  # else the run this one continues asked already
                await self._ask_for_remedy_choice()
            chosen = await self._await_remedy_choice()
            if self.complaint.is_final:
                return
            if not chosen:
                # Settling from this instant: a choice or a withdrawal sent while the default is being
                # recorded is refused (`remedy_being_issued`), not accepted and then overtaken.
                self.complaint.settling = True
                self.complaint.remedy_choice = rules.DEFAULT_REMEDY
                await self._record("remedy_defaulted", SYSTEM, choice=self.complaint.remedy_choice)
        self.complaint.settling = True
        if self.complaint.remedy_choice is RemedyChoice.REPLACEMENT:
            await self._issue_replacement(
                self.complaint.replacement_offer or rules.same_product_again(self.complaint.order)
            )
        else:
            await self._issue_refund()

    async def _ask_for_remedy_choice(self) -> None:
        self.complaint.status = ComplaintStatus.AWAITING_REMEDY_CHOICE
        self.complaint.remedy_choice_due = rules.remedy_choice_due(self._now(), self.complaint.policy)
        await self._record(
            "remedy_choice_requested",
            SYSTEM,
            due=self.complaint.remedy_choice_due,
            notice=notice(self._customer, "choose_remedy", due=self.complaint.remedy_choice_due),
        )

    async def _await_remedy_choice(self) -> bool:
        """Whether the customer chose by `remedy_choice_due` (or the complaint ended meanwhile)."""
        due = self.complaint.remedy_choice_due
        assert due is not None

        def decided() -> bool:
            return self.complaint.remedy_choice is not None or self.complaint.is_final

        while not await self._wait_until(due, decided, or_continue=True):
            if not self._continue_requested:
                return False
            await self._continue_as_new()
        return True

    async def _issue_replacement(self, offer: ReplacementOffer) -> None:
        """R12's replacement, once (R16); an order made good another way already (refunded, or replaced
        for another complaint) ends the complaint rejected with `already_remedied`, replacing nothing."""
        try:
            issued = await workflow.execute_activity_method(
                LedgerActivities.issue_replacement,
                ReplacementIssue(
                    complaint_id=self.complaint.complaint_id,
                    customer_id=self.complaint.customer_id,
                    order_id=self.complaint.order.order_id,
                    offer=offer,
                    actor=str(SYSTEM),
                    at=self._now(),
                ),
                **LEDGER_CALL,
            )
        except ActivityError as err:
            code = remedy_refusal(err)
            if code is None:
                raise
            await self._close(ComplaintStatus.REJECTED, SYSTEM, reason_code=code)
            return
        await self._close(
            ComplaintStatus.REPLACED,
            SYSTEM,
            replacement=issued.offer,
            notice=notice(self._customer, "replacement_issued", sku=issued.offer.sku),
        )

    # ------------------------------------------------------------------------------- support's actions

    @workflow.update
    async def review(self, review: Review) -> ComplaintState:
        """R8: approve the deficiency, or reject it with a reason (which ends the complaint)."""
        if self._handled_before():  # a retry across a continue-as-new: see workflows/once.py
            return self.complaint
        self._validate_review(review)  # again: see ComplaintWorkflow
        if await self._take_review(review):
            self.complaint.status = ComplaintStatus.RECTIFYING
            await self._record("deficiency_approved", review.actor, note=review.note)
        return self.complaint

    @review.validator
    def _validate_review(self, review: Review) -> None:
        self._check_review(review)

    @workflow.update
    async def mark_fixed(self, fix: MarkFixed) -> ComplaintState:
        """R11: fixed before the deadline: the complaint ends rectified, with no refund."""
        if self._handled_before():  # a retry across a continue-as-new: see workflows/once.py
            return self.complaint
        self._validate_mark_fixed(fix)  # again: see ComplaintWorkflow
        await self._mark_fixed(fix)
        return self.complaint

    @mark_fixed.validator
    def _validate_mark_fixed(self, fix: MarkFixed) -> None:
        self._check("mark_fixed", fix.actor)

    async def _mark_fixed(self, fix: MarkFixed) -> None:
        await self._close(
            ComplaintStatus.RECTIFIED,
            fix.actor,
            note=fix.note,
            notice=notice(self._customer, "defect_rectified"),
        )

    @workflow.update
    async def offer_replacement(self, offer: OfferReplacement) -> ComplaintState:
        """R12: another product of around the same value, should the customer choose a replacement."""
        if self._handled_before():  # a retry across a continue-as-new: see workflows/once.py
            return self.complaint
        self._validate_offer_replacement(offer)  # again: see ComplaintWorkflow
        self.complaint.replacement_offer = offer.offer
        await self._record(
            "replacement_offered",
            offer.actor,
            sku=offer.offer.sku,
            name=offer.offer.name,
            value=str(offer.offer.value.amount),
            currency=offer.offer.value.currency,
            notice=notice(self._customer, "replacement_offered", sku=offer.offer.sku),
        )
        return self.complaint

    @offer_replacement.validator
    def _validate_offer_replacement(self, offer: OfferReplacement) -> None:
        self._check("offer_replacement", offer.actor)
        tolerance = self.complaint.policy.replacement_value_tolerance
        if not rules.within_replacement_tolerance(self.complaint.order.price, offer.offer.value, tolerance):
            raise refused(
                PolicyRefusal(
                    refusals.REPLACEMENT_OUT_OF_TOLERANCE,
                    f"a replacement must be worth the price paid ({self.complaint.order.price.amount} "
                    f"{self.complaint.order.price.currency}) within {tolerance:.0%}",
                )
            )

    # ------------------------------------------------------------------------------ customer's actions

    @workflow.update
    async def choose_remedy(self, choice: ChooseRemedy) -> ComplaintState:
        """R12: refund or replacement, any time before the remedy is issued. The same choice again (a
        client's retry) changes nothing and is not recorded twice."""
        if self._handled_before():  # a retry across a continue-as-new: see workflows/once.py
            return self.complaint
        self._validate_choose_remedy(choice)  # again: see ComplaintWorkflow
        if self.complaint.remedy_choice is choice.choice and workflow.patched(REPEATED_CHOICE_UNRECORDED):
            return self.complaint
        if self.complaint.remedy_choice is not None:
            self.complaint.remedy_changes += 1
        self.complaint.remedy_choice = choice.choice
        await self._record("remedy_chosen", choice.actor, choice=choice.choice)
        return self.complaint

    @choose_remedy.validator
    def _validate_choose_remedy(self, choice: ChooseRemedy) -> None:
        self._check("choose_remedy", choice.actor)
        try:
            check_remedy_change(self.complaint, choice.choice)
        except PolicyRefusal as refusal:
            raise refused(refusal) from None

    @workflow.update
    async def withdraw(self, withdrawal: Withdraw) -> ComplaintState:
        """R14: the customer may withdraw at any time before the complaint is resolved."""
        if self._handled_before():  # a retry across a continue-as-new: see workflows/once.py
            return self.complaint
        self._validate_withdraw(withdrawal)  # again: see ComplaintWorkflow
        await self._withdraw(withdrawal)
        return self.complaint

    @withdraw.validator
    def _validate_withdraw(self, withdrawal: Withdraw) -> None:
        self._check("withdraw", withdrawal.actor)

    async def _withdraw(self, withdrawal: Withdraw) -> None:
        await self._close(ComplaintStatus.WITHDRAWN, withdrawal.actor, note=withdrawal.note)

    # ---------------------------------------------------------------------------- what systems report

    def _reported(self, report: Report) -> Reported:
        """R11, R9/R10 and R14 reported by a system: the update each stands for, validator and body."""
        if report.action is ReportedAction.FIXED:
            fix = MarkFixed(actor=report.actor, note=report.note)
            return Reported(partial(self._validate_mark_fixed, fix), partial(self._mark_fixed, fix))
        if report.action is ReportedAction.WITHDRAWN:
            withdrawal = Withdraw(actor=report.actor, note=report.note)
            return Reported(partial(self._validate_withdraw, withdrawal), partial(self._withdraw, withdrawal))
        answer = AccessAnswer(
            actor=report.actor,
            grant=report.action is ReportedAction.ACCESS_GRANTED,
            credentials=report.credentials,
        )
        return Reported(partial(self._validate_answer_access, answer), partial(self._answer_access, answer))

    # ---------------------------------------------------------------------------------------- plumbing

    def _continued_input(self) -> FileDefectComplaint:
        carried = {
            "continued": self.complaint.model_copy(deep=True),
            "handled_updates": sorted(self._handled_updates),
            "handled_reports": list(self._handled_reports),
        }
        return self._filing.model_copy(update=carried)
