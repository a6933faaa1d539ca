"""What systems report about a complaint, to be recorded durably whether or not a worker runs.

A shop's deployment pipeline reports a fix deployed (R11), a hosting panel the customer's access decision
(R9, R10), an app the customer's withdrawal (R14). A person acting wants the answer now (an update); a
system reporting a fact wants it recorded and nothing more (a signal, which Temporal keeps even while no
worker runs). A report is the same action as its update, under the same policy checks: what the policy
refuses is recorded in the audit trail as `report_refused`, since no caller waits to hear it.

Each report carries an id the workflow remembers, so that a retrying sender's second copy, or a report
racing the update for the same action, ends in one outcome and one trail entry.
"""

from __future__ import annotations

import hashlib
import uuid
from enum import StrEnum
from typing import Final

from pydantic import Field, model_validator

from policy.complaint import Action, SealedSecret, credentials_go_with_grant
from policy.models import Actor, Frozen

REPORT_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
"""1-64 letters, digits, `_` or `-`: the desk's own ids (`rpt_<32 hex digits>`) and a sender's UUID fit."""

REMEMBERED_REPORTS: Final = 100
"""How many report ids a complaint remembers (and carries across a continue-as-new): a sender retries
within minutes, and the history of a complaint stays bounded."""


class ReportedAction(StrEnum):
    """What a system may report. Each is one of the policy's actions (`ACTION_OF_REPORT`)."""

    FIXED = "mark_fixed"
    ACCESS_GRANTED = "grant_access"
    ACCESS_REFUSED = "refuse_access"
    WITHDRAWN = "withdraw"


ACTION_OF_REPORT: Final[dict[ReportedAction, Action]] = {
    ReportedAction.FIXED: "mark_fixed",
    ReportedAction.ACCESS_GRANTED: "answer_access",
    ReportedAction.ACCESS_REFUSED: "answer_access",
    ReportedAction.WITHDRAWN: "withdraw",
}
"""The policy's action (`policy.complaint.ALLOWED`) each report takes: the door table decides for both."""


class Report(Frozen):
    """One report, as the `report` signal of a complaint's workflow carries it."""

    report_id: str = Field(pattern=REPORT_ID_PATTERN)
    complaint_id: str = Field(min_length=1, max_length=200)
    """The complaint it is about. A signal reaches the workflow id's latest run, which after the complaint
    ended may be a later complaint on the same order and kind: that one ignores it."""
    action: ReportedAction
    actor: Actor
    note: str = Field(default="", max_length=5_000)
    credentials: SealedSecret | None = None
    """With `ACCESS_GRANTED` alone: the customer's credentials, sealed for the vault by the desk, as an
    update's `AccessAnswer` carries them; never in clear."""

    @model_validator(mode="after")
    def _credentials_go_with_a_grant(self) -> Report:
        if self.action in (ReportedAction.ACCESS_GRANTED, ReportedAction.ACCESS_REFUSED):
            credentials_go_with_grant(self.action is ReportedAction.ACCESS_GRANTED, self.credentials)
        elif self.credentials is not None:
            raise ValueError(f"{self.action.value} takes no credentials")
        return self


def new_report_id() -> str:
    """A fresh id, for a report whose sender gave none."""
    return f"rpt_{uuid.uuid4().hex}"


def derived_report_id(*parts: str) -> str:
    """The same id for the same parts (a caller, a complaint, an action, the caller's idempotency key):
    a sender that retries with its key sends the same report, which the complaint then takes once."""
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return f"rpt_{digest[:32]}"
