"""A defect complaint's server access (docs/policy.md R9, R10): support asks for it, the customer grants or
refuses it, and support sees the credentials granted.

These updates are a chapter of their own: the access request pauses the rectification clock, the answer
files sealed credentials in the vault and moves the deadline, and a reveal leaves a trail of who saw them.
They live apart from `DefectComplaintWorkflow`, which inherits them: `workflow.defn` collects the update
handlers a workflow class inherits (as it does `ComplaintWorkflow.state`), so their names, and the
commands they issue, are the same as if they were defined on the workflow itself.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import LEDGER_CALL, LedgerActivities, StoreCredentials
    from policy import refusals, rules
    from policy.complaint import (
        AccessAnswer,
        AccessRequest,
        AccessState,
        ComplaintState,
        already_final,
    )
    from policy.credentials import CredentialsRevealed, RevealCredentials, check_reveal
    from policy.models import ComplaintStatus
    from policy.refusals import PolicyRefusal
    from workflows.common import notice, refused
    from workflows.once import OncePerUpdate


class AccessUpdates(OncePerUpdate):
    """The access request's update handlers and their validators, for a workflow whose complaint can ask
    the customer for server access (the defect's). The run waits for the answer; see
    `DefectComplaintWorkflow._await_access_answer`."""

    # ------------------------------------------------------------------------------- support's actions

    @workflow.update
    async def request_access(self, request: AccessRequest) -> ComplaintState:
        """R9: ask the customer for temporary server access; the rectification clock pauses (R10)."""
        if self._handled_before():  # a retry across a continue-as-new: see workflows/once.py
            return self.complaint
        self._validate_request_access(request)  # again: see ComplaintWorkflow
        now = self._now()
        self.complaint.access_requests += 1
        self.complaint.access = AccessState(
            number=self.complaint.access_requests,
            scope=request.scope,
            reason=request.reason,
            requested_at=now,
            answer_due=rules.access_answer_due(now, self.complaint.policy),
            resume_status=self.complaint.status,
        )
        self.complaint.status = ComplaintStatus.AWAITING_ACCESS
        due = self.complaint.access.answer_due
        await self._record(
            "access_requested",
            request.actor,
            scope=request.scope,
            due=due,
            notice=notice(self._customer, "access_requested", scope=request.scope, due=due),
        )
        return self.complaint

    @request_access.validator
    def _validate_request_access(self, request: AccessRequest) -> None:
        self._check("request_access", request.actor)

    @workflow.update
    async def reveal_credentials(self, reveal: RevealCredentials) -> CredentialsRevealed:
        """R9: support is to see the credentials the customer granted. Recorded here, with who and when,
        before the desk opens the vault; the workflow holds only the vault reference, and nobody is sent a
        notice."""
        ref = self._revealable(reveal)  # again: see ComplaintWorkflow
        seq = len(self.complaint.events) + 1
        await self._record(
            "credentials_revealed", reveal.actor, access_request=self._access.number, credentials_ref=ref
        )
        return CredentialsRevealed(credentials_ref=ref, event=self.complaint.events[seq - 1])

    @reveal_credentials.validator
    def _validate_reveal_credentials(self, reveal: RevealCredentials) -> None:
        self._revealable(reveal)

    def _revealable(self, reveal: RevealCredentials) -> str:
        try:
            return check_reveal(self.complaint, reveal.actor)
        except PolicyRefusal as refusal:
            raise refused(refusal) from None

    # ------------------------------------------------------------------------------ customer's actions

    @workflow.update
    async def answer_access(self, answer: AccessAnswer) -> ComplaintState:
        """R9/R10: refusal ends the complaint; a grant files the sealed credentials and moves the deadline
        by exactly the time the customer took."""
        if self._handled_before():  # a retry across a continue-as-new: see workflows/once.py
            return self.complaint
        self._validate_answer_access(answer)  # again: see ComplaintWorkflow
        await self._answer_access(answer)
        return self.complaint

    async def _answer_access(self, answer: AccessAnswer) -> None:
        """The answer, once its validator passed: the update's body, and a reported answer's
        (`workflows.reports`)."""
        access = self._access
        answered_at = self._now()
        access.answered_at = answered_at
        if not answer.grant:
            access.granted = False
            await self._close(ComplaintStatus.ACCESS_REFUSED, answer.actor, reason_code="access_refused")
            return
        assert answer.credentials is not None
        try:
            ref = await workflow.execute_activity_method(
                LedgerActivities.store_credentials,
                StoreCredentials(
                    complaint_id=self.complaint.complaint_id,
                    request_no=access.number,
                    sealed=answer.credentials,
                ),
                **LEDGER_CALL,
            )
        except ActivityError as err:
            access.answered_at = None
            raise ApplicationError(
                "the credentials could not be read; seal them again for this complaint",
                type=refusals.INVALID_CREDENTIALS,
                non_retryable=True,
            ) from err
        if self.complaint.is_final:
            raise refused(already_final(self.complaint))
        access.granted = True
        access.credentials_ref = ref
        paused = rules.pause_for_access(access.requested_at, answered_at)
        self.complaint.paused += paused
        self.complaint.deadline = rules.rectification_deadline(
            self.complaint.created_at, self.complaint.policy, self.complaint.paused
        )
        self.complaint.status = access.resume_status
        await self._record(
            "access_granted",
            answer.actor,
            credentials_ref=ref,
            paused_seconds=paused.total_seconds(),
            deadline=self.complaint.deadline,
        )

    @answer_access.validator
    def _validate_answer_access(self, answer: AccessAnswer) -> None:
        self._check("answer_access", answer.actor)
        if self._access.answered_at is not None:  # a first answer is being filed (a failed one resets it)
            raise refused(
                PolicyRefusal(refusals.INVALID_STATE, "the access request is already being answered")
            )

    # ---------------------------------------------------------------------------------------- plumbing

    @property
    def _access(self) -> AccessState:
        """The open access request: only the access updates and the run's wait for an answer read it, and
        each only once the complaint has one."""
        assert self.complaint.access is not None
        return self.complaint.access
