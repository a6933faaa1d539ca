"""The ledger's tables. Alembic migrations under `ledger/migrations` create exactly this schema.

Unique keys carry the exactly-once guarantees (R16): `refunds(source_kind, source_id)` and
`refunds(order_id)` (an order's price comes back once, by R2, R5, R6 or R12 alike),
`replacements(complaint_id)`, `remedies(order_id)` (an order is made good once, by a refund or a
replacement), `activations(order_id)`, `evidence(complaint_id, position)`, `balance_entries(refund_id)`,
`complaint_events(complaint_id, seq)`, `notifications(dedupe_key)`, `vault_secrets(complaint_id,
request_no)`. Delivery is at least once and each message once per destination: `webhook_events(event_id)`
and `deliveries(delivery_key)`. A one-time console sign-in link is used once: `spent_tokens(token_id)`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.types import ExactDecimal, UtcDateTime


class Base(DeclarativeBase):
    pass


class OrderRow(Base):
    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    product_kind: Mapped[str] = mapped_column(String(32))
    product_name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    currency: Mapped[str] = mapped_column(String(3))
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ComplaintRow(Base):
    """A projection of each complaint workflow's state, for listing and for reading after retention."""

    __tablename__ = "complaints"

    complaint_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    remedy_choice: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state_json: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    """When the policy acts next without anyone (`policy.due.next_due`); None once final."""
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    """When R13 escalated the complaint, if it did; it stays set after support decides."""

    __table_args__ = (
        Index("ix_complaints_order_kind", "order_id", "kind"),
        # Support's queue (`ledger.queue`): open statuses, most urgent first.
        Index("ix_complaints_open_due", "status", "due_at"),
    )


class ComplaintEventRow(Base):
    """Append-only audit trail (R16): what happened, when, and who did it."""

    __tablename__ = "complaint_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.complaint_id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    detail_json: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("complaint_id", "seq", name="uq_complaint_events_seq"),)


class RefundRow(Base):
    """At most one refund per complaint or activation: the unique key is the exactly-once guarantee."""

    __tablename__ = "refunds"

    refund_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_kind: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("source_kind", "source_id", name="uq_refunds_source"),
        # A unique index, not a constraint: SQLite adds an index in place, where a constraint would mean
        # rebuilding `refunds` under the balance entries that reference it.
        Index("uq_refunds_order", "order_id", unique=True),
    )


class BalanceEntryRow(Base):
    """A credit to a customer's balance; one per refund."""

    __tablename__ = "balance_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    kind: Mapped[str] = mapped_column(String(32))
    refund_id: Mapped[str] = mapped_column(ForeignKey("refunds.refund_id"), unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))


class ReplacementRow(Base):
    __tablename__ = "replacements"

    replacement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(String(200), unique=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[Decimal] = mapped_column(ExactDecimal())
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))


class RemedyRow(Base):
    """How an order was made good: its one refund or replacement (R12, R16). Issuing either inserts the
    order's row here in the same transaction, so the primary key settles a race between the two kinds."""

    __tablename__ = "remedies"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source_kind: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(200))
    remedy_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())


class NotificationRow(Base):
    """The outbox: a sender (not part of the policy) delivers these and stamps `sent_at`."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    recipient: Mapped[str] = mapped_column(String(200), index=True)
    template: Mapped[str] = mapped_column(String(64))
    complaint_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    payload_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class VaultSecretRow(Base):
    """Server credentials, encrypted at rest (AES-GCM); only `ref` ever leaves the vault."""

    __tablename__ = "vault_secrets"

    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(String(200))
    request_no: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("complaint_id", "request_no", name="uq_vault_secrets_request"),)


class ActivationRow(Base):
    """A projection of each rented number's activation (R1, R2); one per order."""

    __tablename__ = "activations"

    activation_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id"), unique=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state_json: Mapped[str] = mapped_column(Text)


class EvidenceRow(Base):
    """Attachments to claims (R6), kept here so that only their references enter a workflow's history."""

    __tablename__ = "evidence"

    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(String(200), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("complaint_id", "position", name="uq_evidence_position"),)


class CustomerContactRow(Base):
    """Where a customer's notices go: the email address the shop's backend gave with an order, sealed
    (AES-GCM, bound to the customer id) so that it is never in the ledger in clear."""

    __tablename__ = "customer_contacts"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookEndpointRow(Base):
    """A receiver of the shop's backend: its URL, the event types it wants, and its signing secret, sealed;
    after a rotation the previous secret still signs until `previous_expires_at`."""

    __tablename__ = "webhook_endpoints"

    endpoint_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    event_types_json: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean)
    secret_json: Mapped[str] = mapped_column(Text)
    previous_secret_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookEventRow(Base):
    """What happened, as the shop's backend hears of it: one row per state change of a complaint or an
    activation, written in the transaction that records the change. `event_id` is what receivers
    deduplicate on (the `webhook-id` header)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sequence_key: Mapped[str] = mapped_column(String(200), index=True)
    data_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeliveryRow(Base):
    """One message to one destination (an email to a recipient, an event to a webhook endpoint), created
    with the message in the same transaction, and its delivery state: pending until sent, retried with
    backoff until `expires_at`, then failed. A dispatcher holds a row while it sends it (`lease_until`);
    rows with the same `destination` and `sequence_key` go out in `id` order."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_key: Mapped[str] = mapped_column(String(400), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    destination: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[int] = mapped_column(Integer)
    sequence_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_pending", "destination", "sequence_key", "status", "id"),
        Index("ix_deliveries_sequence", "destination", "sequence_key", "id"),
    )


class DeliveryAttemptRow(Base):
    """Each attempt at a delivery, for the delivery log: when, the receiver's answer and how long it took."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class SpentTokenRow(Base):
    """Tokens of the browser pages that no longer open anything before they expire: a console sign-in
    link once used (it is one-time), a session once signed out of. The primary key makes spending a
    token once a database fact, whichever API process sees it."""

    __tablename__ = "spent_tokens"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spent_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
