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
