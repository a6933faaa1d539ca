"""What systems report about a complaint (docs/policy.md R9, R10, R11, R14), as a signal.

A person acting wants the answer now, and sends an update; a system reporting a fact (a fix deployed, the
customer's access decision from a hosting panel) wants it recorded, even while no worker runs, and sends
the `report` signal, which Temporal keeps until a worker takes it. A report is the update it stands for:
the kind's workflow maps it to that update's validator and body (`_reported`), so the policy checks it
exactly as it checks the update, and the complaint changes exactly as the update would change it.

Nobody waits for a signal's answer, so a refusal cannot be an error: it is an event of the audit trail,
`report_refused`, with the refusal's code and sentence, the report's id and the sender as its actor, and a
notice to support. Once the complaint has its outcome nothing is recorded after it (the trail ends with
its outcome event): a report that reaches the run then is logged by the worker, and its sender reads the
outcome at the complaint's address. A complaint that has ended refuses signals itself (Temporal refuses to
signal a closed workflow), and the desk answers that refusal synchronously.

One outcome, once: a report whose id the complaint has seen is ignored (a sender's retry), and so is one
whose effect is in place already (the same fix or answer sent as an update, or as another report). The ids
are remembered, the latest `REMEMBERED_REPORTS`, and a defect complaint carries them across continue-as-new.
A report taken as said records nothing, but its signal is in the history all the same: each such report
counts towards the run's history bound, so a sender that repeats itself for ever makes the run continue as
new rather than grow without end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from policy.complaint import check_kind_allows
    from policy.models import ComplaintStatus
    from policy.refusals import PolicyRefusal
    from policy.reports import ACTION_OF_REPORT, REMEMBERED_REPORTS, Report, ReportedAction
    from workflows.common import SUPPORT, ComplaintWorkflow, notice, refused

S = ComplaintStatus

IN_EFFECT: dict[ReportedAction, ComplaintStatus] = {
    ReportedAction.FIXED: S.RECTIFIED,
    ReportedAction.ACCESS_REFUSED: S.ACCESS_REFUSED,
    ReportedAction.WITHDRAWN: S.WITHDRAWN,
}
"""The outcome each final report brings about: a complaint that has it already takes the report as said."""


@dataclass(frozen=True)
class Reported:
    """A report as the update it stands for: the update's validator, and the body the update runs."""

    check: Callable[[], None]
    act: Callable[[], Awaitable[None]]


def remembered(ids: list[str]) -> deque[str]:
    """The report ids a run starts with (those a run it continues handed over), bounded."""
    return deque(ids, maxlen=REMEMBERED_REPORTS)


class Reports(ComplaintWorkflow):
    """The `report` signal of a complaint's workflow; the kind's workflow says what each report is."""

    _handled_reports: deque[str]
    """The ids of the latest reports this run (and the runs before it) took, newest last."""

    @workflow.signal
    async def report(self, report: Report) -> None:
        """R9, R10, R11, R14 reported by a system: taken once, checked by the policy as the update is, and
        recorded as `report_refused` when the policy says no."""
        if report.complaint_id != self.complaint.complaint_id:
            workflow.logger.warning("report %s names another complaint: ignored", report.report_id)
            return
        if report.report_id in self._handled_reports:
            self._note_history_length()  # taken as said, its signal still lengthens the history
            return  # a sender's retry
        self._handled_reports.append(report.report_id)
        await workflow.wait_condition(lambda: self._filed or self._filing_refused is not None)
        await workflow.wait_condition(lambda: not self._access_answer_being_filed())
        if self._in_effect(report) or self._filing_refused is not None:
            self._note_history_length()
            return  # the same outcome, reached by an update or by another report
        try:
            self._check_kind_has(report)
            reported = self._reported(report)
            reported.check()
            await reported.act()
        except ApplicationError as refusal:
            await self._refuse_report(report, refusal)

    def _reported(self, report: Report) -> Reported:
        """The kind's own: the update `report` stands for (only those the kind has are ever asked)."""
        raise NotImplementedError

    def _check_kind_has(self, report: Report) -> None:
        """`invalid_state` for a report the complaint's kind has no action for (a fix on a claim)."""
        try:
            check_kind_allows(self.complaint.kind, ACTION_OF_REPORT[report.action])
        except PolicyRefusal as refusal:
            raise refused(refusal) from None

    def _in_effect(self, report: Report) -> bool:
        """Whether the complaint shows what `report` says already: its outcome, or for a grant, its latest
        access request granted."""
        if report.action is ReportedAction.ACCESS_GRANTED:
            access = self.complaint.access
            return access is not None and access.granted is True
        return self.complaint.status is IN_EFFECT[report.action]

    def _access_answer_being_filed(self) -> bool:
        """An answer to the access request is being filed (its credentials on their way to the vault): a
        report of an answer waits for it, to find it in effect, or failed and the request open again."""
        access = self.complaint.access
        return (
            self.complaint.status is S.AWAITING_ACCESS
            and access is not None
            and access.answered_at is not None
        )

    async def _refuse_report(self, report: Report, refusal: ApplicationError) -> None:
        """The refusal in the audit trail, with a notice to support; after the outcome, in the log only."""
        code = refusal.type or "refused"
        if self.complaint.is_final:
            workflow.logger.warning(
                "report %s (%s by %s) came after the outcome %s: not recorded (%s)",
                report.report_id,
                report.action.value,
                report.actor,
                self.complaint.status.value,
                code,
            )
            self._note_history_length()
            return
        await self._record(
            "report_refused",
            report.actor,
            action=report.action.value,
            reason_code=code,
            reason=refusal.message,
            report_id=report.report_id,
            notice=notice(
                SUPPORT, "report_refused", action=report.action.value, reason_code=code, by=str(report.actor)
            ),
        )
