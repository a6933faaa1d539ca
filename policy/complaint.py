"""A complaint's state, the actions people take on it, and which action each state allows.

The workflow owns a `ComplaintState`, changes it only through the actions below, and answers queries with
it; the ledger keeps a projection of it. The guards are pure so that the same refusal reaches the API, the
CLI and a direct Temporal client, and so that tests can enumerate them. The server credentials a customer
grants (R9), and the guard on revealing them, are `policy.credentials`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policy import refusals
from policy.models import (
    FINAL_STATUSES,
    Actor,
    AwareDatetime,
    ClaimRejection,
    ComplaintEvent,
    ComplaintKind,
    ComplaintStatus,
    DefectRejection,
    EvidenceRef,
    Frozen,
    Order,
    RejectionReason,
    RemedyChoice,
    ReplacementOffer,
    Resolution,
    ReviewDecision,
    Role,
)
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot

# ---------------------------------------------------------------------------------------------- inputs


class Filing(Frozen):
    """What every complaint starts from. The policy snapshot is taken by whoever files it."""

    complaint_id: str = Field(min_length=1, max_length=200)
    order: Order
    description: str = Field(min_length=1, max_length=20_000)
    filed_by: Actor
    policy: PolicySnapshot
    evidence: list[EvidenceRef] = Field(default_factory=list)
    """References to the attachments the ledger stores (R6); the bytes never enter the workflow."""


class FileDefectComplaint(Filing):
    """Starts a `DefectComplaintWorkflow` (R7..R13)."""

    continued: ComplaintState | None = None
    """The complaint as the previous run left it, when a run whose history reached its bound continued as
    new; the workflow honours it only in a run Temporal started as a continuation, never from a filing."""
    handled_updates: list[str] = Field(default_factory=list)
    """With `continued`: the ids of the updates the previous runs handled, which the new run answers
    without acting again (a client's retry of one that raced the continuation)."""
    handled_reports: list[str] = Field(default_factory=list, max_length=100)
    """With `continued`: the ids of the latest reports the previous runs took (`workflows.reports`), which
    the new run ignores if they come again."""


class FileClaim(Filing):
    """Starts a `RefundClaimWorkflow`: SMS not received (R5) or invalid number (R6)."""

    kind: Literal[ComplaintKind.SMS_NOT_RECEIVED, ComplaintKind.INVALID_NUMBER]


class Review(Frozen):
    """R8: support approves the deficiency or rejects it with one of the R8 reasons."""

    actor: Actor
    decision: ReviewDecision
    reason_code: RejectionReason | None = None
    note: str = Field(default="", max_length=5_000)

    @model_validator(mode="after")
    def _reason_goes_with_rejection(self) -> Review:
        refusal = review_reason_refusal(self.decision, self.reason_code)
        if refusal is not None:
            raise ValueError(refusal.message)
        return self


REJECTION_REASONS: dict[ComplaintKind, tuple[RejectionReason, ...]] = {
    ComplaintKind.MAJOR_DEFECT: tuple(DefectRejection),
    ComplaintKind.SMS_NOT_RECEIVED: (
        ClaimRejection.SMS_DELIVERED,
        ClaimRejection.INSUFFICIENT_EVIDENCE,
        ClaimRejection.CONTRADICTS_TERMS,
    ),
    ComplaintKind.INVALID_NUMBER: (
        ClaimRejection.NUMBER_VALID,
        ClaimRejection.INSUFFICIENT_EVIDENCE,
        ClaimRejection.CONTRADICTS_TERMS,
    ),
}
"""R8 for defects; for claims about numbers, what support can point to when it says no (R5, R6)."""


def review_reason_refusal(
    decision: ReviewDecision, reason_code: RejectionReason | None, kind: ComplaintKind | None = None
) -> PolicyRefusal | None:
    """A rejection names one of its kind's reasons (R8 for a defect), an approval none. The refusal, or
    None when they match; without `kind`, any kind's reason will do."""
    if decision is ReviewDecision.REJECT and reason_code is None:
        return PolicyRefusal(
            refusals.REASON_CODE_REQUIRED, f"a rejection needs a reason_code: {_reasons_for(kind)}"
        )
    if decision is ReviewDecision.APPROVE and reason_code is not None:
        return PolicyRefusal(refusals.REASON_CODE_NOT_ALLOWED, "an approval takes no reason_code")
    if kind is not None and reason_code is not None and reason_code not in REJECTION_REASONS[kind]:
        return PolicyRefusal(
            refusals.REASON_CODE_NOT_ALLOWED,
            f"{reason_code.value} is not a reason to reject a {kind.value} complaint: {_reasons_for(kind)}",
        )
    return None


def _reasons_for(kind: ComplaintKind | None) -> str:
    if kind is None:
        return " / ".join(
            f"{k.value}: {', '.join(r.value for r in reasons)}" for k, reasons in REJECTION_REASONS.items()
        )
    return ", ".join(reason.value for reason in REJECTION_REASONS[kind])


class AccessRequest(Frozen):
    """R9: support asks for temporary access to the customer's server."""

    actor: Actor
    scope: str = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=5_000)


class SealedSecret(Frozen):
    """Credentials encrypted for the vault before they reach Temporal: the history only ever sees this."""

    key_id: str = Field(min_length=1, max_length=64)
    nonce: str = Field(min_length=1, max_length=64)
    ciphertext: str = Field(min_length=1, max_length=20_000)


class AccessAnswer(Frozen):
    """R9/R10: the customer grants access (sealed credentials) or refuses it."""

    actor: Actor
    grant: bool
    credentials: SealedSecret | None = None

    @model_validator(mode="after")
    def _credentials_go_with_grant(self) -> AccessAnswer:
        credentials_go_with_grant(self.grant, self.credentials)
        return self


def credentials_go_with_grant(grant: bool, credentials: object | None) -> None:
    """R9: a grant brings credentials and a refusal none, whether sealed (here) or not yet (the API's body).
    Raises `ValueError`, so that a model validator reports it as a field error."""
    if grant and credentials is None:
        raise ValueError("granting access needs credentials")
    if not grant and credentials is not None:
        raise ValueError("refusing access takes no credentials")


class MarkFixed(Frozen):
    """R11: support reports the defect rectified."""

    actor: Actor
    note: str = Field(default="", max_length=5_000)


class OfferReplacement(Frozen):
    """R12: support offers another product of around the same value."""

    actor: Actor
    offer: ReplacementOffer


class ChooseRemedy(Frozen):
    """R12: the customer's choice, any time before the remedy is issued."""

    actor: Actor
    choice: RemedyChoice


class Withdraw(Frozen):
    """R14: the customer withdraws the complaint."""

    actor: Actor
    note: str = Field(default="", max_length=5_000)


# ----------------------------------------------------------------------------------------------- state


class ReviewRecord(Frozen):
    decision: ReviewDecision
    reason_code: RejectionReason | None
    note: str
    by: str
    at: datetime


class AccessState(BaseModel):
    """The latest access request (R9/R10); earlier ones live in the events."""

    model_config = ConfigDict(extra="forbid")

    number: int
    scope: str
    reason: str
    requested_at: datetime
    answer_due: datetime
    resume_status: ComplaintStatus
    answered_at: datetime | None = None
    granted: bool | None = None
    credentials_ref: str | None = None


class ComplaintState(BaseModel):
    """Everything a complaint is, as the workflow holds it and queries return it."""

    model_config = ConfigDict(extra="forbid")

    complaint_id: str
    kind: ComplaintKind
    order: Order
    description: str
    filed_by: Actor
    policy: PolicySnapshot
    evidence: list[EvidenceRef] = Field(default_factory=list)
    status: ComplaintStatus
    created_at: AwareDatetime
    deadline: datetime | None = None
    paused: timedelta = timedelta(0)
    review: ReviewRecord | None = None
    access: AccessState | None = None
    access_requests: int = 0
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None
    remedy_choice: RemedyChoice | None = None
    remedy_changes: int = 0
    """How often the customer changed a remedy choice already made (capped by `max_remedy_changes`)."""
    remedy_choice_due: datetime | None = None
    replacement_offer: ReplacementOffer | None = None
    settling: bool = False
    resolution: Resolution | None = None
    events: list[ComplaintEvent] = Field(default_factory=list)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def customer_id(self) -> str:
        return self.order.customer_id


FileDefectComplaint.model_rebuild()  # its `continued` names ComplaintState, defined just above


# ---------------------------------------------------------------------------------------------- guards

Action = Literal[
    "review",
    "request_access",
    "answer_access",
    "mark_fixed",
    "offer_replacement",
    "choose_remedy",
    "withdraw",
]

S = ComplaintStatus
OPEN_BEFORE_SETTLEMENT = frozenset(
    {S.UNDER_REVIEW, S.AWAITING_ACCESS, S.RECTIFYING, S.ESCALATED, S.AWAITING_REMEDY_CHOICE}
)

ALLOWED: dict[Action, frozenset[ComplaintStatus]] = {
    "review": frozenset({S.UNDER_REVIEW, S.ESCALATED}),
    "request_access": frozenset({S.UNDER_REVIEW, S.RECTIFYING}),
    "answer_access": frozenset({S.AWAITING_ACCESS}),
    "mark_fixed": frozenset({S.UNDER_REVIEW, S.RECTIFYING}),
    "offer_replacement": OPEN_BEFORE_SETTLEMENT,
    "choose_remedy": OPEN_BEFORE_SETTLEMENT,
    "withdraw": OPEN_BEFORE_SETTLEMENT,
}
"""Which status allows which action: the whole state machine's door policy in one table."""

ACTOR_ROLE: dict[Action, Role] = {
    "review": Role.SUPPORT,
    "request_access": Role.SUPPORT,
    "mark_fixed": Role.SUPPORT,
    "offer_replacement": Role.SUPPORT,
    "answer_access": Role.CUSTOMER,
    "choose_remedy": Role.CUSTOMER,
    "withdraw": Role.CUSTOMER,
}
"""Support's actions and the customer's own actions (the customer must own the order)."""

DEADLINE_BOUND: frozenset[Action] = frozenset({"request_access", "mark_fixed"})
"""Actions that only make sense while the rectification clock still runs (R9, R11)."""

ACTIONS_OF_KIND: dict[ComplaintKind, frozenset[Action]] = {
    ComplaintKind.MAJOR_DEFECT: frozenset(ALLOWED),
    ComplaintKind.SMS_NOT_RECEIVED: frozenset({"review", "withdraw"}),
    ComplaintKind.INVALID_NUMBER: frozenset({"review", "withdraw"}),
}
"""A claim about a number is reviewed and may be withdrawn (R5, R6, R14); the rest is the defect's R9-R12.
Each name is also the Temporal update the kind's workflow defines."""


def check_remedy_change(state: ComplaintState, choice: RemedyChoice) -> None:
    """R12 lets the customer change their mind until the remedy is issued, `max_remedy_changes` times:
    every change is recorded, and a complaint's history must stay bounded. The same choice again is no
    change (it is answered and not recorded)."""
    if state.remedy_choice is None or state.remedy_choice is choice:
        return
    if state.remedy_changes >= state.policy.max_remedy_changes:
        raise PolicyRefusal(
            refusals.REMEDY_CHANGES_EXHAUSTED,
            f"the remedy was changed {state.remedy_changes} times already, the most the policy allows; "
            f"it stays {state.remedy_choice.value}",
        )


def check_action(state: ComplaintState, action: Action, actor: Actor, now: datetime) -> None:
    """Raise `PolicyRefusal` unless `actor` may take `action` on this complaint at `now`."""
    check_kind_allows(state.kind, action)
    role = ACTOR_ROLE[action]
    if actor.role is not role:
        raise PolicyRefusal(refusals.FORBIDDEN_ACTOR, f"only {role.value} may {_say(action)}")
    if role is Role.CUSTOMER and actor.id != state.customer_id:
        raise PolicyRefusal(refusals.FORBIDDEN_ACTOR, "only the customer who placed the order may do this")
    if state.is_final:
        raise already_final(state)
    if state.settling:
        raise PolicyRefusal(
            refusals.REMEDY_BEING_ISSUED, "the remedy is being issued; it can no longer change"
        )
    if state.status not in ALLOWED[action]:
        raise PolicyRefusal(
            refusals.INVALID_STATE, f"cannot {_say(action)} while the complaint is {state.status.value}"
        )
    if action in DEADLINE_BOUND and state.deadline is not None and now >= state.deadline:
        raise PolicyRefusal(
            refusals.INVALID_STATE,
            f"the rectification deadline ({state.deadline.isoformat()}) has passed; cannot {_say(action)}",
        )


def check_kind_allows(kind: ComplaintKind, action: Action) -> None:
    """`invalid_state` for an action this kind of complaint does not have (an access request on a claim)."""
    if action not in ACTIONS_OF_KIND[kind]:
        allowed = " and ".join(sorted(_say(a) for a in ACTIONS_OF_KIND[kind]))
        raise PolicyRefusal(
            refusals.INVALID_STATE, f"a {kind.value} complaint has no {_say(action)}; only {allowed}"
        )


def already_final(state: ComplaintState) -> PolicyRefusal:
    """The refusal for any action on a complaint that has reached its outcome."""
    return PolicyRefusal(
        refusals.INVALID_STATE, f"the complaint is already {state.status.value}; nothing can change it"
    )


def _say(action: Action) -> str:
    return action.replace("_", " ")
