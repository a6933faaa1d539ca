"""The API's answers turned back into what the chaos driver reads: `ComplaintState` and `ActivationState`
from the JSON of docs/api.md, and errors raised as the in-process desk raises them.

An answer does not carry all of a state (the order's product, the policy, the vault reference stay in the
ledger and the workflow), so the states built here hold what the answer shows and nothing else: what the
driver's conditions read (status, review, access, remedy choice, replacement offer, resolution, SMS,
cancel). The driver's final checks do not read these: they read Temporal's result and the ledger's rows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from bench.api_client import error_of
from policy.activation import ActivationState, CancelReason
from policy.complaint import AccessState, ComplaintState, ReviewRecord
from policy.models import (
    ActivationStatus,
    Actor,
    ComplaintEvent,
    ComplaintKind,
    ComplaintStatus,
    Money,
    RefundRecord,
    RemedyChoice,
    ReplacementOffer,
    Resolution,
    Role,
)
from policy.refusals import PolicyRefusal
from starter.desk.errors import (
    ActivationNotFound,
    ActivationUnresponsive,
    ComplaintNotFound,
    ComplaintUnresponsive,
    OrderNotFound,
)

NOT_POLICY = frozenset(
    {"validation_error", "idempotency_key_reused", "idempotency_key_invalid", "idempotency_key_not_accepted"}
)
"""4xx codes that are about the request's form, not the policy: a bug of the client, never a refusal."""

NOT_FOUND: dict[str, type[Exception]] = {
    "complaint_not_found": ComplaintNotFound,
    "order_not_found": OrderNotFound,
    "activation_not_found": ActivationNotFound,
}
UNRESPONSIVE: dict[str, type[Exception]] = {
    "complaint_unresponsive": ComplaintUnresponsive,
    "activation_unresponsive": ActivationUnresponsive,
}


class ApiUnavailable(ConnectionError):
    """A 503 other than a workflow's silence: Temporal or the ledger away from the API process."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.transient_name = f"ApiUnavailable.{code}"
        """How the driver counts it among its retries: by the API's code."""


class UnexpectedAnswer(Exception):
    """An answer no policy explains (a 500, a 401, a validation error): the run's violation, not a retry."""


def body_of(response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON of a 2xx answer; otherwise the error raised as the in-process desk raises it: a policy
    refusal, a not-found, a workflow that did not answer, the service away."""
    status = response.status_code
    if 200 <= status < 300:
        body: dict[str, Any] = response.json()
        return body
    code, message = error_of(response)
    if status == 503:
        if code in UNRESPONSIVE:
            raise UNRESPONSIVE[code](f"{code}: {message}")
        raise ApiUnavailable(code, message)
    if status == 404 and code in NOT_FOUND:
        raise NOT_FOUND[code](message)
    if status in (409, 422) and code not in NOT_POLICY:
        raise PolicyRefusal(code, message)
    raise UnexpectedAnswer(f"{what}: {status} {code}: {message}")


def _at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _money(amount: str, currency: str) -> Money:
    return Money(amount=Decimal(amount), currency=currency)


def _offer(shown: dict[str, Any] | None) -> ReplacementOffer | None:
    if shown is None:
        return None
    value = _money(shown["value"], shown["currency"])
    return ReplacementOffer(sku=shown["sku"], name=shown["name"], value=value)


def _refund(shown: dict[str, Any] | None) -> RefundRecord | None:
    if shown is None:
        return None
    return RefundRecord(amount=_money(shown["amount"], shown["currency"]), issued_at=shown["issued_at"])


def _resolution(shown: dict[str, Any] | None) -> Resolution | None:
    if shown is None:
        return None
    return Resolution(
        outcome=ComplaintStatus(shown["outcome"]),
        reason_code=shown["reason_code"],
        refund=_refund(shown.get("refund")),
        replacement=_offer(shown.get("replacement")),
    )


def _access(shown: dict[str, Any] | None) -> AccessState | None:
    """The latest access request as shown: no number, no status to resume, no vault reference (never in
    an answer), which the driver does not read."""
    if shown is None:
        return None
    fields: dict[str, Any] = {
        "scope": shown["scope"],
        "reason": shown["reason"],
        "requested_at": _at(shown["requested_at"]),
        "answer_due": _at(shown["answer_due"]),
        "answered_at": _at(shown["answered_at"]),
        "granted": shown["granted"],
        "credentials_ref": None,
    }
    return AccessState.model_construct(**fields)


def _review(shown: dict[str, Any] | None) -> ReviewRecord | None:
    return None if shown is None else ReviewRecord.model_validate(shown)


def complaint_state(shown: dict[str, Any]) -> ComplaintState:
    """A complaint as the API showed it (docs/api.md "A complaint")."""
    choice = shown["remedy_choice"]
    fields: dict[str, Any] = {
        "complaint_id": shown["complaint_id"],
        "kind": ComplaintKind(shown["kind"]),
        "description": shown["description"],
        "status": ComplaintStatus(shown["status"]),
        "created_at": _at(shown["created_at"]),
        "deadline": _at(shown["deadline"]),
        "review": _review(shown["review"]),
        "access": _access(shown["access_request"]),
        "escalated_at": _at(shown["escalated_at"]),
        "remedy_choice": None if choice is None else RemedyChoice(choice),
        "remedy_choice_due": _at(shown["remedy_choice_due"]),
        "replacement_offer": _offer(shown["replacement_offer"]),
        "resolution": _resolution(shown["resolution"]),
        "events": [ComplaintEvent.model_validate(e) for e in shown.get("events", [])],
    }
    return ComplaintState.model_construct(**fields)


def activation_state(shown: dict[str, Any]) -> ActivationState:
    """An activation as the API showed it. Who asked for a cancel is not shown, only why it was canceled:
    the customer's cancel is `canceled_by_customer`, which names the order's customer."""
    reason = None if shown["cancel_reason"] is None else CancelReason(shown["cancel_reason"])
    by_customer = reason is CancelReason.CANCELED_BY_CUSTOMER
    sms = shown["sms"]
    fields: dict[str, Any] = {
        "activation_id": shown["activation_id"],
        "phone_number": shown["phone_number"],
        "service": shown["service"],
        "started_at": _at(shown["started_at"]),
        "expires_at": _at(shown["expires_at"]),
        "status": ActivationStatus(shown["status"]),
        "sms_text": None if sms is None else sms["text"],
        "completed_at": None if sms is None else _at(sms["received_at"]),
        "cancel_requested_by": Actor(role=Role.CUSTOMER, id=shown["customer_id"]) if by_customer else None,
        "canceled_at": _at(shown["canceled_at"]),
        "cancel_reason": reason,
        "refund": _refund(shown["refund"]),
        "refund_refused": shown["refund_refused"],
    }
    return ActivationState.model_construct(**fields)
