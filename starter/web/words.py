"""A complaint in plain words, for support and for its customer: where it stands, what happens at its next
deadline and how long is left until then. The instant itself is the policy's (`policy.due.next_due`); the
sentences are the pages' own."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from policy.complaint import ComplaintState
from policy.models import ComplaintKind, ComplaintStatus, ProductKind

S = ComplaintStatus

SOON = timedelta(days=1)
"""A deadline closer than this is shown amber in the queue; a passed one red."""


class Urgency(StrEnum):
    OVERDUE = "overdue"
    SOON = "soon"
    LATER = "later"
    NONE = "none"


def urgency(due: datetime | None, now: datetime) -> Urgency:
    if due is None:
        return Urgency.NONE
    if due <= now:
        return Urgency.OVERDUE
    return Urgency.SOON if due - now <= SOON else Urgency.LATER


def time_left(due: datetime | None, now: datetime) -> str:
    """'in 2 days 4 hours', 'overdue by 35 minutes', or 'no deadline'."""
    if due is None:
        return "no deadline"
    if due <= now:
        return f"overdue by {span(now - due)}"
    return f"in {span(due - now)}"


def span(length: timedelta) -> str:
    """A length in its two largest units: '2 days 4 hours', '35 minutes', 'less than a minute'."""
    minutes = int(length.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    named = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return " ".join(named[:2]) if named else "less than a minute"


STATUS_FOR_CUSTOMER = {
    S.UNDER_REVIEW: "We are reviewing your complaint.",
    S.AWAITING_ACCESS: "We asked for temporary access to your server, to find the defect. Please answer.",
    S.RECTIFYING: "We confirmed the defect and are fixing it.",
    S.ESCALATED: "Your complaint is with a senior member of our support team.",
    S.AWAITING_REMEDY_CHOICE: "We could not fix the defect in time. Please choose a refund or a replacement.",
    S.RECTIFIED: "We fixed the defect. This complaint is closed.",
    S.REFUNDED: "We refunded what you paid. This complaint is closed.",
    S.REPLACED: "We sent you a replacement. This complaint is closed.",
    S.REJECTED: "We looked into it and could not accept the complaint. It is closed.",
    S.ACCESS_REFUSED: "Access to your server was refused, so no refund is due (our policy). It is closed.",
    S.WITHDRAWN: "You withdrew this complaint. It is closed.",
}

STATUS_FOR_SUPPORT = {
    S.UNDER_REVIEW: "Waiting for support's review.",
    S.AWAITING_ACCESS: "Waiting for the customer to grant or refuse server access (the clock is paused).",
    S.RECTIFYING: "Deficiency approved: being fixed before the deadline.",
    S.ESCALATED: "Escalated: the deadline passed unreviewed; support must still decide.",
    S.AWAITING_REMEDY_CHOICE: "Not fixed in time: waiting for the customer to choose refund or replacement.",
    S.RECTIFIED: "Closed: marked fixed before the deadline, no refund.",
    S.REFUNDED: "Closed: refunded in full.",
    S.REPLACED: "Closed: replacement issued.",
    S.REJECTED: "Closed: rejected.",
    S.ACCESS_REFUSED: "Closed: the customer refused server access (or did not answer), no refund.",
    S.WITHDRAWN: "Closed: withdrawn by the customer.",
}


def at_deadline(state: ComplaintState, *, for_customer: bool) -> str | None:
    """What the policy does at the complaint's next deadline if nobody acts first; None once it has ended."""
    status = state.status
    if status is S.UNDER_REVIEW:
        return (
            "If it is not reviewed by then, it goes to a senior member of support."
            if for_customer
            else "Unreviewed at the deadline, it is escalated (R13)."
        )
    if status is S.RECTIFYING and state.kind is ComplaintKind.MAJOR_DEFECT:
        return (
            "If the defect is not fixed by then, you get a full refund or, if you prefer, a replacement of "
            "about the same value."
            if for_customer
            else "Unfixed at the deadline, the customer gets a refund or a replacement, their choice (R12)."
        )
    if status is S.AWAITING_ACCESS:
        return (
            "If you do not answer by then, it counts as a refusal, and the complaint ends with no refund."
            if for_customer
            else "No answer by then counts as a refusal: the complaint ends with no refund (R10)."
        )
    if status is S.AWAITING_REMEDY_CHOICE:
        return (
            "If you do not choose by then, we refund what you paid."
            if for_customer
            else "No choice by then means a full refund (R12)."
        )
    if status is S.ESCALATED:
        return (
            "The deadline has passed; our support team still owes you a decision."
            if for_customer
            else "The deadline has passed: decide now."
        )
    return None


REASONS = {
    "user_api_misuse": "the problem comes from using the API functions in a way they do not support",
    "third_party_incompatibility": "the problem comes from third-party software the product does not support",
    "not_a_defect": "what was described is not a defect of the product",
    "contradicts_terms": "the request contradicts the terms of sale",
    "sms_delivered": "the provider's log shows the SMS reached the number",
    "number_valid": "the number works: the evidence does not show it refused the code",
    "insufficient_evidence": "the evidence does not show the problem",
}
"""Each review reason code in words, as the pages show it beside the code."""


def reason(code: str | None) -> str:
    if code is None:
        return ""
    return REASONS.get(code, code.replace("_", " "))


KIND_WORDS = {
    ComplaintKind.MAJOR_DEFECT: "Major defect",
    ComplaintKind.SMS_NOT_RECEIVED: "SMS not received",
    ComplaintKind.INVALID_NUMBER: "Invalid number",
}
"""Each kind of complaint as the console names it (the queue, its filter and a complaint's page)."""

KIND_FOR_CUSTOMER = {
    ComplaintKind.MAJOR_DEFECT: "a major defect",
    ComplaintKind.SMS_NOT_RECEIVED: "an SMS that never arrived",
    ComplaintKind.INVALID_NUMBER: "a number that did not work",
}
"""Each kind as a customer's page says what the complaint is about."""

PRODUCT_WORDS = {ProductKind.SOFTWARE: "Software", ProductKind.VIRTUAL_NUMBER: "Virtual number"}

EVENT_WORDS = {
    "filed": "Filed",
    "support_reminded": "Support reminded of the coming deadline",
    "escalated": "Escalated: the deadline passed unreviewed",
    "deficiency_approved": "Deficiency approved",
    "claim_approved": "Claim approved",
    "access_requested": "Server access requested",
    "access_granted": "Server access granted",
    "credentials_revealed": "Server credentials revealed",
    "replacement_offered": "Replacement offered",
    "remedy_choice_requested": "Customer asked to choose a remedy",
    "remedy_chosen": "Customer chose a remedy",
    "remedy_defaulted": "No choice in time: the default remedy applies",
    "rectified": "Marked fixed",
    "refunded": "Refunded",
    "replaced": "Replacement issued",
    "rejected": "Rejected",
    "access_refused": "Server access refused",
    "withdrawn": "Withdrawn by the customer",
}
"""The audit trail's event types in words; a type not listed is shown as its own words."""


def event_words(event_type: str) -> str:
    return EVENT_WORDS.get(event_type, event_type.replace("_", " ").capitalize())
