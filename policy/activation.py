"""A rented number's activation (R1, R2): its inputs, its state and who may do what to it.

The workflow holds an `ActivationState` and changes it only through `SmsReceived` and `CancelActivation`;
the guards are pure so the desk can answer for an activation that has ended without asking Temporal.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from policy import refusals
from policy.models import (
    ActivationStatus,
    Actor,
    Frozen,
    Order,
    RefundRecord,
    Role,
)
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot

PhoneNumber = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
"""E.164: a plus, a country code and the subscriber number, digits only."""

ServiceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""The service the number receives its code from ("whatsapp", "telegram")."""


class StartActivation(Frozen):
    """Starts a `NumberActivationWorkflow` for an order's rented number."""

    activation_id: str = Field(min_length=1, max_length=100)
    order: Order
    phone_number: PhoneNumber
    service: ServiceName
    started_by: Actor
    policy: PolicySnapshot


class SmsReceived(Frozen):
    """R1: the backend reports the SMS the number received."""

    actor: Actor
    text: str = Field(min_length=1, max_length=1_000)


class CancelReason(StrEnum):
    NO_SMS_IN_TIME = "no_sms_in_time"
    CANCELED_BY_CUSTOMER = "canceled_by_customer"
    CANCELED_BY_BACKEND = "canceled_by_backend"


class CancelActivation(Frozen):
    """R2: the customer or the backend gives up on the number before an SMS came."""

    actor: Actor


class ActivationState(BaseModel):
    """Everything an activation is, as the workflow holds it and the ledger projects it."""

    model_config = ConfigDict(extra="forbid")

    activation_id: str
    order: Order
    phone_number: str
    service: str
    started_by: str
    started_at: datetime
    expires_at: datetime
    status: ActivationStatus = ActivationStatus.WAITING_FOR_SMS
    sms_text: str | None = None
    completed_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    """Set the moment the wait ends without an SMS (a cancel, or the timer): from then on no SMS counts."""
    cancel_requested_by: Actor | None = None
    canceled_at: datetime | None = None
    canceled_by: str | None = None
    cancel_reason: CancelReason | None = None
    refund: RefundRecord | None = None
    refund_refused: str | None = None
    """Why a canceled activation returned nothing: the order had been refunded another way already."""
    version: int = 0
    """Counts the changes, so the ledger's projection only ever moves forward."""

    @property
    def is_final(self) -> bool:
        return self.status is not ActivationStatus.WAITING_FOR_SMS

    @property
    def customer_id(self) -> str:
        return self.order.customer_id


def check_sms(state: ActivationState, sms: SmsReceived) -> bool:
    """R1: the backend reports the SMS while the number waits. Returns True when this exact SMS was already
    recorded (a retried request, answered with the activation as it is); raises `PolicyRefusal` otherwise."""
    if sms.actor.role is not Role.BACKEND:
        raise PolicyRefusal(refusals.FORBIDDEN_ACTOR, "only the shop's backend reports an SMS")
    if state.status is ActivationStatus.COMPLETED:
        if state.sms_text == sms.text:
            return True
        raise PolicyRefusal(refusals.INVALID_STATE, "the activation already completed with another SMS")
    if state.status is ActivationStatus.CANCELED or state.cancel_requested_at is not None:
        raise PolicyRefusal(
            refusals.INVALID_STATE,
            "the activation was canceled and its price returned (R2); a late SMS cannot complete it",
        )
    return False


def check_cancel(state: ActivationState, cancel: CancelActivation) -> bool:
    """R2: the customer who ordered or the backend cancels before an SMS came. Returns True when it is
    already canceled (a repeat, answered with the refund already made); raises `PolicyRefusal` otherwise."""
    actor = cancel.actor
    if actor.role not in (Role.BACKEND, Role.CUSTOMER):
        raise PolicyRefusal(refusals.FORBIDDEN_ACTOR, "only the customer or the shop's backend may cancel")
    if actor.role is Role.CUSTOMER and actor.id != state.customer_id:
        raise PolicyRefusal(refusals.FORBIDDEN_ACTOR, "only the customer who placed the order may cancel")
    if state.status is ActivationStatus.COMPLETED:
        raise PolicyRefusal(
            refusals.INVALID_STATE,
            "the SMS was received and the activation completed; it is not refundable (R1)",
        )
    return state.status is ActivationStatus.CANCELED or state.cancel_requested_at is not None


def cancel_reason(actor: Actor | None) -> CancelReason:
    """Who ended the wait: nobody (the timer ran out), the customer, or the backend."""
    if actor is None:
        return CancelReason.NO_SMS_IN_TIME
    if actor.role is Role.CUSTOMER:
        return CancelReason.CANCELED_BY_CUSTOMER
    return CancelReason.CANCELED_BY_BACKEND
