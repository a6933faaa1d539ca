"""What goes into and comes out of the ledger: plain pydantic models, also used as activity payloads."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from policy.activation import ActivationState
from policy.complaint import ComplaintState
from policy.models import ComplaintEvent, Frozen, Money, ReplacementOffer

RefundSource = Literal["complaint", "activation"]
RemedyKind = Literal["refund", "replacement"]


class RefundIssue(Frozen):
    """Credit `amount` to the customer's balance, once per (source_kind, source_id)."""

    source_kind: RefundSource
    source_id: str
    customer_id: str
    order_id: str
    amount: Money
    actor: str
    at: datetime


class IssuedRefund(Frozen):
    refund_id: str
    source_kind: RefundSource
    source_id: str
    customer_id: str
    order_id: str | None = Field(default=None, description="Absent in histories recorded before 0002.")
    amount: Money
    issued_at: datetime
    actor: str
    created: bool = Field(description="False when this call found the refund already issued.")


class ReplacementIssue(Frozen):
    complaint_id: str
    customer_id: str
    order_id: str
    offer: ReplacementOffer
    actor: str
    at: datetime


class IssuedReplacement(Frozen):
    replacement_id: str
    complaint_id: str
    offer: ReplacementOffer
    issued_at: datetime
    created: bool


class OrderRemedy(Frozen):
    """How an order was made good (R12, R16): its one refund or replacement, and what issued it."""

    order_id: str
    kind: RemedyKind
    source_kind: RefundSource
    source_id: str
    remedy_id: str = Field(description="The refund's or the replacement's id.")
    issued_at: datetime


class ComplaintRecord(Frozen):
    """The projection of one complaint plus where its workflow runs."""

    workflow_id: str
    run_id: str
    """The complaint's first run, which filed it: the runs it continues as follow from it."""
    state: ComplaintState


class ActivationRecord(Frozen):
    """The projection of one activation plus where its workflow run is."""

    workflow_id: str
    run_id: str
    state: ActivationState


class Notification(Frozen):
    """An outbox message. `dedupe_key` makes a retried send a no-op."""

    dedupe_key: str = Field(min_length=1, max_length=300)
    recipient: str
    template: str
    complaint_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class ComplaintTransition(Frozen):
    """One event and the state right after it: written together, so projection and audit agree. The
    notices the event sends go to the outbox in the same transaction."""

    state: ComplaintState
    event: ComplaintEvent
    notifications: list[Notification] = Field(default_factory=list)


class BalanceEntry(Frozen):
    at: datetime
    kind: str
    amount: Money
    refund_id: str
    actor: str


class Balance(Frozen):
    customer_id: str
    totals: dict[str, Decimal]
    entries: list[BalanceEntry]


class OutboxMessage(Notification):
    created_at: datetime
    sent_at: datetime | None = None
