"""What the shop's backend hears of: the webhook event types, and the event each state change makes.

A webhook carries `{id, type, occurred_at, data}`. The types are the contract with the shop's backend; an
endpoint subscribes to some of them (or `*`, all). Each is made from an event the ledger records, in the
same transaction, so a state change and its webhook are never one without the other.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel

from policy.activation import ActivationState
from policy.complaint import ComplaintState
from policy.models import ActivationStatus, ComplaintEvent, ComplaintStatus

COMPLAINT_FILED: Final = "complaint.filed"
COMPLAINT_STATUS_CHANGED: Final = "complaint.status_changed"
COMPLAINT_ACCESS_REQUESTED: Final = "complaint.access_requested"
COMPLAINT_REMEDY_CHOSEN: Final = "complaint.remedy_chosen"
COMPLAINT_REFUNDED: Final = "complaint.refunded"
COMPLAINT_REPLACED: Final = "complaint.replaced"
COMPLAINT_CLOSED: Final = "complaint.closed"
ACTIVATION_COMPLETED: Final = "activation.completed"
ACTIVATION_CANCELED: Final = "activation.canceled"

EVENT_TYPES: Final = (
    COMPLAINT_FILED,
    COMPLAINT_STATUS_CHANGED,
    COMPLAINT_ACCESS_REQUESTED,
    COMPLAINT_REMEDY_CHOSEN,
    COMPLAINT_REFUNDED,
    COMPLAINT_REPLACED,
    COMPLAINT_CLOSED,
    ACTIVATION_COMPLETED,
    ACTIVATION_CANCELED,
)
"""Every type a webhook endpoint may subscribe to."""

ALL_TYPES: Final = "*"
"""An endpoint's subscription to every type, those added later included."""


class WebhookEvent(BaseModel):
    """One event for the shop's backend, as its webhook body carries it."""

    id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    sequence_key: str
    """The complaint or activation it is about: its events reach each endpoint in the order they happened."""


def event_id(*parts: object) -> str:
    """A stable id for the event made of `parts` (a complaint's id and event number, say): written again
    by a retried activity it is the same id, which the ledger's unique key then keeps once."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return f"evt_{digest[:32]}"


def wanted(subscribed: list[str], event_type: str) -> bool:
    return ALL_TYPES in subscribed or event_type in subscribed


EVENT_OF_TRAIL: Final = {
    "access_requested": COMPLAINT_ACCESS_REQUESTED,
    "remedy_chosen": COMPLAINT_REMEDY_CHOSEN,
    "refunded": COMPLAINT_REFUNDED,
    "replaced": COMPLAINT_REPLACED,
}
"""Audit-trail events that are webhook events of their own, beyond filing, status changes and closing."""


def complaint_events(
    state: ComplaintState, event: ComplaintEvent, previous: ComplaintStatus | None
) -> list[WebhookEvent]:
    """The webhook events one recorded event of a complaint makes, given the status before it (None: the
    complaint is new). Their data names the complaint and what changed; never its description, evidence
    or credentials."""
    data: dict[str, Any] = {
        "complaint_id": state.complaint_id,
        "order_id": state.order.order_id,
        "customer_id": state.customer_id,
        "kind": state.kind.value,
        "status": state.status.value,
        "event": {"seq": event.seq, "type": event.type, "actor": event.actor},
    }
    types: list[tuple[str, dict[str, Any]]] = []
    if event.type == "filed":
        types.append((COMPLAINT_FILED, {"deadline": state.deadline}))
    if previous is not None and previous is not state.status:
        types.append((COMPLAINT_STATUS_CHANGED, {"previous_status": previous.value}))
    if event.type in EVENT_OF_TRAIL:
        types.append((EVENT_OF_TRAIL[event.type], _public(event.detail)))
    if state.is_final and (previous is None or previous is not state.status):
        reason = None if state.resolution is None else state.resolution.reason_code
        types.append((COMPLAINT_CLOSED, {"outcome": state.status.value, "reason_code": reason}))
    return [
        WebhookEvent(
            id=event_id(state.complaint_id, event.seq, kind),
            type=kind,
            occurred_at=event.at,
            data={**data, **extra},
            sequence_key=state.complaint_id,
        )
        for kind, extra in types
    ]


def activation_events(state: ActivationState, previous: ActivationStatus | None) -> list[WebhookEvent]:
    """The webhook event of an activation that has just ended: completed (R1) or canceled (R2)."""
    if previous is state.status:
        return []
    if state.status is ActivationStatus.COMPLETED:
        kind, at = ACTIVATION_COMPLETED, state.completed_at
    elif state.status is ActivationStatus.CANCELED:
        kind, at = ACTIVATION_CANCELED, state.canceled_at
    else:
        return []
    refund = None if state.refund is None else state.refund.amount.model_dump(mode="json")
    data = {
        "activation_id": state.activation_id,
        "order_id": state.order.order_id,
        "customer_id": state.order.customer_id,
        "status": state.status.value,
        "cancel_reason": None if state.cancel_reason is None else state.cancel_reason.value,
        "refund": refund,
    }
    return [
        WebhookEvent(
            id=event_id(state.activation_id, state.version, kind),
            type=kind,
            occurred_at=at or state.started_at,
            data=data,
            sequence_key=state.activation_id,
        )
    ]


PRIVATE_DETAIL: Final = frozenset({"credentials_ref", "note", "reason"})
"""Trail details that stay with the desk: a vault reference, and people's free text."""


def _public(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if k not in PRIVATE_DETAIL}
