"""What every complaint workflow does the same way: intake, the audit trail, notices, refunds, escalation.

`ComplaintWorkflow` is a plain base class with the `state` query and the `filed` update every complaint
answers; each kind's workflow is one `@workflow.defn` subclass whose run method and update handlers read as
the rules it enforces (a chapter of them may come from a plain subclass it inherits, as `workflows.access`
is for defects), and calls these helpers for the plumbing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import LEDGER_CALL, LedgerActivities
    from ledger.records import ComplaintTransition, Notification
    from policy import intake, refusals, rules
    from policy.complaint import (
        Action,
        ComplaintState,
        Filing,
        Review,
        ReviewRecord,
        check_action,
        review_reason_refusal,
    )
    from policy.ids import complaint_workflow_id
    from policy.models import (
        SYSTEM,
        Actor,
        ComplaintEvent,
        ComplaintKind,
        ComplaintStatus,
        RefundRecord,
        ReplacementOffer,
        Resolution,
        ReviewDecision,
    )
    from policy.refusals import PolicyRefusal
    from workflows import search_attributes
    from workflows.clock import WakeClock
    from workflows.patches import (
        CONTINUE_AS_NEW_PAST_BOUND,
        ESCALATION_BEFORE_LATE_REVIEW,
        ONE_ACTIVITY_PER_TRANSITION,
    )
    from workflows.refunds import refund_or_refusal

SUPPORT = "support"
S = ComplaintStatus


@dataclass(frozen=True)
class Notice:
    """A message an event sends: to whom, which template, and what goes in it."""

    recipient: str
    template: str
    payload: dict[str, Any] = field(default_factory=dict)


def notice(recipient: str, template: str, **payload: Any) -> Notice:
    return Notice(recipient, template, payload)


class ComplaintWorkflow(WakeClock):
    """What the complaint workflows share. Each update handler runs its validator again before it changes
    anything: updates delivered in one workflow task (a worker back after a crash finds several waiting)
    all pass their validators before the first handler runs, so only the handler sees what the others did."""

    complaint: ComplaintState

    _filing: Filing
    """What the complaint was filed with, for the `filed` update's validator."""

    _filed: bool = False
    """Whether the "filed" event is in the ledger: the run sets it once that record is written (a run that
    continues a complaint starts filed)."""

    _filing_refused: ApplicationError | None = None
    """Why the run refused the filing (intake, R5's activity, not a continuation): the `filed` update
    answers with it."""

    _complaint_changed: bool = False
    """Whether an event was recorded since the review period last began to wait: `_record` sets it with
    every event, `_review_period` clears it as the wait starts and wakes when it is set."""

    continues_as_new: ClassVar[bool] = False
    """Whether the kind's history can grow with what people do, so that a run continues as new past
    `history_events_per_run`. A claim's cannot: a review or a withdrawal ends it, in a handful of events."""

    _continue_requested: bool = False
    """Set once this run's history reached its bound: the run continues as new at its next wait."""
    _late_reviews_waiting: int = 0
    """Reviews that came after the deadline and wait for the run to escalate first (R13). While one waits,
    the run escalates before it continues as new: continuing waits for every handler to finish, this one
    included, which waits on the run."""

    @workflow.query
    def state(self) -> ComplaintState:
        """The complaint as it stands. Defined once here: `workflow.defn` collects the handlers a subclass
        inherits, so each kind's workflow answers it, and the desk can name it `ComplaintWorkflow.state`."""
        return self.complaint

    @workflow.update
    async def filed(self) -> ComplaintState:
        """The complaint as filed, once its "filed" event and its projection are in the ledger. The desk
        files a complaint with this update in the same call that starts the workflow (update-with-start),
        so a filing answers with the complaint the ledger already shows, and a read right after it finds
        it. A filing the run refuses fails this update with the run's refusal (the validator refuses what
        intake alone decides, before the update is accepted). It changes nothing and records nothing: on a
        complaint filed before, it answers the complaint as it stands."""
        await workflow.wait_condition(lambda: self._filed or self._filing_refused is not None)
        if self._filing_refused is not None:
            refusal = self._filing_refused
            raise ApplicationError(refusal.message, type=refusal.type, non_retryable=True)
        return self.complaint

    @filed.validator
    def _validate_filed(self) -> None:
        if not self._filed:
            self._check_intake(self._filing, self.complaint.kind)

    @contextmanager
    def _refusing_the_filing(self) -> Iterator[None]:
        """A refusal raised in the block fails the run, and the `filed` update with it."""
        try:
            yield
        except ApplicationError as refusal:
            self._filing_refused = refusal
            raise

    # -------------------------------------------------------------------------------------------- intake

    def _check_intake(self, filing: Filing, kind: ComplaintKind) -> None:
        """R3, R4, R6 and the kind's product, judged at the instant the workflow was started, and the id that
        keeps R15: the desk checked them already, and this holds a client that starts the workflow directly to
        the same rules."""
        try:
            intake.check_claim(
                filing.order,
                kind,
                filing.description,
                len(filing.evidence),
                workflow.info().workflow_start_time,
                filing.policy,
            )
        except PolicyRefusal as refusal:
            raise refused(refusal) from None
        check_runs_as(complaint_workflow_id(filing.order.order_id, kind), "complaint", "order and kind (R15)")

    # ------------------------------------------------------------------------------------------- review

    async def _take_review(self, review: Review) -> bool:
        """Keep support's review; a rejection ends the complaint with its reason (R8; R5, R6). Returns
        whether support approved, for the kind's workflow to go on from there."""
        if self._escalation_due() and workflow.patched(ESCALATION_BEFORE_LATE_REVIEW):
            # The deadline passed unreviewed: R13 escalates it, as it would have had this review come a
            # moment later; the run is about to, so the review decides the escalated complaint after it.
            self._late_reviews_waiting += 1
            try:
                await workflow.wait_condition(lambda: self.complaint.status is not S.UNDER_REVIEW)
            finally:
                self._late_reviews_waiting -= 1
            self._check_review(review)  # still open, and not decided by a review that came with this one
        self.complaint.review = ReviewRecord(
            decision=review.decision,
            reason_code=review.reason_code,
            note=review.note,
            by=str(review.actor),
            at=self._now(),
        )
        if review.decision is ReviewDecision.APPROVE:
            return True
        assert review.reason_code is not None
        await self._close(
            ComplaintStatus.REJECTED, review.actor, reason_code=review.reason_code.value, note=review.note
        )
        return False

    # ------------------------------------------------------------------------------------ review period

    async def _review_period(self, deadline: Callable[[], datetime], still_open: Callable[[], bool]) -> None:
        """R13: wait until `deadline()` while `still_open()`, reminding support `review_reminder_before` it.

        The wait wakes early whenever the complaint records an event, and the loop reads both afresh: an
        access grant moves the deadline (R10), and a status change (a review, a fix, an access request, a
        withdrawal) can end the review period."""
        while still_open():
            if self._continue_requested and not self._late_reviews_waiting:
                await self._continue_as_new()
                continue
            due = deadline()
            if self._has_come(due):
                return
            reminder_at = rules.review_reminder_at(due, self.complaint.policy)
            if self.complaint.reminded_at is None and self._has_come(reminder_at):
                await self._remind_support()
                continue
            wake_at = due if self.complaint.reminded_at is not None else reminder_at
            self._complaint_changed = False
            await self._wait_until(wake_at, self._complaint_has_changed)

    async def _remind_support(self) -> None:
        self.complaint.reminded_at = self._now()
        pending = "review" if self.complaint.review is None else "fix"
        await self._record(
            "support_reminded",
            SYSTEM,
            pending=pending,
            deadline=self.complaint.deadline,
            notice=notice(SUPPORT, "deadline_approaching", pending=pending, deadline=self.complaint.deadline),
        )

    def _escalation_due(self) -> bool:
        return self.complaint.status is ComplaintStatus.UNDER_REVIEW and self._now() >= self._deadline

    async def _escalate(self) -> None:
        """R13: unreviewed at the deadline; support must still decide, however late."""
        self.complaint.status = ComplaintStatus.ESCALATED
        self.complaint.escalated_at = self._now()
        await self._record(
            "escalated",
            SYSTEM,
            deadline=self.complaint.deadline,
            notice=notice(SUPPORT, "complaint_escalated"),
        )
        await self._await_escalation_decided()

    async def _await_escalation_decided(self) -> None:
        """Wait for support's decision on an escalated complaint, for as long as it takes. The wait comes
        first even when the decision is in: it lets a review's handler finish before the run goes on, as
        complaints escalated before the history bound existed did, and their replays still must."""

        def escalated() -> bool:
            return self.complaint.status is ComplaintStatus.ESCALATED

        while True:
            await workflow.wait_condition(lambda: not escalated() or self._continue_requested)
            if not escalated():
                return
            await self._continue_as_new()

    # -------------------------------------------------------------------------------------------- money

    async def _issue_refund(self) -> None:
        """The full price, once (R12, R5, R6); if the order was made good another way already, the
        complaint ends rejected with the ledger's reason rather than paying twice (R16): `already_refunded`
        where its price went back, `already_remedied` where it was replaced."""
        record = await refund_or_refusal(
            "complaint", self.complaint.complaint_id, self.complaint.order, SYSTEM, at=self._now()
        )
        if isinstance(record, str):
            await self._close(ComplaintStatus.REJECTED, SYSTEM, reason_code=record)
            return
        await self._close(
            ComplaintStatus.REFUNDED,
            SYSTEM,
            refund=record,
            notice=notice(self._customer, "refund_issued", amount=str(record.amount.amount)),
        )

    # ---------------------------------------------------------------------------------------- plumbing

    @property
    def _deadline(self) -> datetime:
        assert self.complaint.deadline is not None
        return self.complaint.deadline

    @property
    def _customer(self) -> str:
        return f"customer:{self.complaint.customer_id}"

    def _check(self, action: Action, actor: Actor) -> None:
        try:
            check_action(self.complaint, action, actor, self._now())
        except PolicyRefusal as refusal:
            raise refused(refusal) from None

    def _check_review(self, review: Review) -> None:
        """Support may review now, and a rejection names one of this kind's reasons (R8; R5/R6)."""
        self._check("review", review.actor)
        refusal = review_reason_refusal(review.decision, review.reason_code, self.complaint.kind)
        if refusal is not None:
            raise refused(refusal)

    def _complaint_has_changed(self) -> bool:
        """The review period's wake-up: an event was recorded since its wait began, or the history reached
        its bound after one was."""
        return self._complaint_changed or self._continue_requested

    # ------------------------------------------------------------------------------ bounded histories

    def _note_history_length(self) -> None:
        """After each event: once this run's history has reached `history_events_per_run` (or Temporal
        suggests it), ask the run to continue as new at its next wait. The marker goes into the history
        only here, so complaints that never reach the bound replay with or without this code."""
        if self._continue_requested or not self.continues_as_new:
            return
        info = workflow.info()
        full = info.get_current_history_length() >= self.complaint.policy.history_events_per_run
        if (full or info.is_continue_as_new_suggested()) and workflow.patched(CONTINUE_AS_NEW_PAST_BOUND):
            self._continue_requested = True

    async def _continue_as_new(self) -> None:
        """Continue as new with the complaint as it stands, once no handler runs (one mid-activity would be
        cut off). Returns, without continuing, if a handler ended the complaint meanwhile, or if a late
        review waits for the run to escalate (`_late_reviews_waiting`): the caller escalates first.

        Before a late review could wait here, a run in this state waited for ever (the review for the run,
        the run for the review), unless a withdrawal ended it; such a run is the only history this changes."""
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() or self._late_reviews_waiting > 0
        )
        if self.complaint.is_final or self._late_reviews_waiting:
            return
        workflow.continue_as_new(self._continued_input())

    def _continued_input(self) -> Filing:
        """The input of the run this one continues as: its own, carrying the complaint as it stands."""
        raise NotImplementedError(f"{type(self).__name__} does not continue as new")

    async def _close(
        self,
        outcome: ComplaintStatus,
        actor: Actor,
        *,
        reason_code: str | None = None,
        refund: RefundRecord | None = None,
        replacement: ReplacementOffer | None = None,
        note: str | None = None,
        notice: Notice | None = None,
    ) -> None:
        """Final status and resolution together: `resolution.outcome` always equals the final status."""
        self.complaint.status = outcome
        self.complaint.resolution = Resolution(
            outcome=outcome, reason_code=reason_code, refund=refund, replacement=replacement
        )
        detail: dict[str, Any] = {"reason_code": reason_code, "note": note}
        if refund is not None:
            detail["refund"] = refund.model_dump(mode="json")
        if replacement is not None:
            detail["replacement"] = replacement.model_dump(mode="json")
        await self._record(
            outcome.value, actor, notice=notice, **{k: v for k, v in detail.items() if v is not None}
        )

    async def _record(
        self, event_type: str, actor: Actor, *, notice: Notice | None = None, **detail: Any
    ) -> None:
        """Append an event, publish the new state to search attributes, and write both to the ledger,
        with the notice the event sends, if any."""
        event = ComplaintEvent(
            seq=len(self.complaint.events) + 1,
            at=self._now(),
            actor=str(actor),
            type=event_type,
            detail={k: jsonable(v) for k, v in detail.items()},
        )
        self.complaint.events.append(event)
        self._complaint_changed = True
        workflow.upsert_search_attributes(search_attributes.for_complaint(self.complaint))
        snapshot = self.complaint.model_copy(update={"events": []}, deep=True)
        together = notice is not None and workflow.patched(ONE_ACTIVITY_PER_TRANSITION)
        await workflow.execute_activity_method(
            LedgerActivities.record_transition,
            ComplaintTransition(
                state=snapshot,
                event=event,
                notifications=[self._notification(notice)] if together and notice is not None else [],
            ),
            **LEDGER_CALL,
        )
        if notice is not None and not together:
            await self._notify(notice.recipient, notice.template, **notice.payload)
        self._note_history_length()

    async def _notify(self, recipient: str, template: str, **payload: Any) -> None:
        await workflow.execute_activity_method(
            LedgerActivities.notify, self._notification(notice(recipient, template, **payload)), **LEDGER_CALL
        )

    def _notification(self, message: Notice) -> Notification:
        """The outbox row; its key (complaint, events so far, template) makes a retried write a no-op."""
        return Notification(
            dedupe_key=f"{self.complaint.complaint_id}:{len(self.complaint.events)}:{message.template}",
            recipient=message.recipient,
            template=message.template,
            complaint_id=self.complaint.complaint_id,
            payload={k: jsonable(v) for k, v in message.payload.items()},
        )


def opened(filing: Filing, kind: ComplaintKind, filed_at: datetime, deadline: datetime) -> ComplaintState:
    """A complaint as filed: under review, with the deadline its kind sets (R7 or the review window)."""
    return ComplaintState(
        complaint_id=filing.complaint_id,
        kind=kind,
        order=filing.order,
        description=filing.description,
        filed_by=filing.filed_by,
        policy=filing.policy,
        evidence=filing.evidence,
        status=ComplaintStatus.UNDER_REVIEW,
        created_at=filed_at,
        deadline=deadline,
    )


def check_runs_as(expected: str, what: str, one_per: str) -> None:
    """Fail unless this workflow runs under `expected`: the id that makes Temporal keep one per `one_per`."""
    if workflow.info().workflow_id != expected:
        raise refused(
            PolicyRefusal(
                refusals.WRONG_WORKFLOW_ID,
                f"a {what} runs as workflow {expected}, so that there is one open per {one_per}",
            )
        )


def refused(refusal: PolicyRefusal) -> ApplicationError:
    """A refusal as Temporal carries it: the rule's code as the error type, never retried."""
    return ApplicationError(refusal.message, type=refusal.code, non_retryable=True)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    return value
