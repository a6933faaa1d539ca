"""The policy's vocabulary: orders, money, complaints, their states and outcomes.

Every workflow, activity and API payload is built from these pydantic models, so one definition serves the
history, the ledger and (through `starter/`) the HTTP shapes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from policy.currencies import known_currency

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
"""Ids chosen by the shop (orders, customers, SKUs): no dots, so complaint ids can embed them."""

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(known_currency)]
"""A currency in circulation (`policy.currencies`): any three capitals would admit `XXX` or `XTS`."""


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must carry a time zone (ISO-8601 with Z or an offset)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


CENTS = Decimal("0.01")


def canonical_amount(amount: Decimal) -> Decimal:
    """The one way an amount is written: cents always, more decimals only when they carry value
    (`49.9000` and `49.9` are `49.90`; `1.2345` stays). Equal amounts compare equal either way; this is for
    people and for stable text (the API, the CLI, the audit trail)."""
    normalized = amount.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        return amount.quantize(CENTS)
    return normalized


def _not_a_float(value: Any) -> Any:
    """A float has already lost the cents it was meant to carry (0.1 + 0.2 != 0.3): refuse it rather than
    round it silently. Decimals, ints and decimal strings are exact."""
    if isinstance(value, float):
        raise ValueError('money is exact: give a Decimal or a decimal string, e.g. "12.50", not a float')
    return value


def _unsigned_zero(value: Decimal) -> Decimal:
    """`Decimal("-0")` passes `ge=0` but would be written "-0.00"."""
    return value.copy_abs() if value.is_zero() else value


class Money(Frozen):
    """An exact amount in one currency. Never a float."""

    amount: Annotated[
        Decimal,
        BeforeValidator(_not_a_float),
        AfterValidator(_unsigned_zero),
        Field(ge=0, max_digits=18, decimal_places=4),
    ]
    currency: CurrencyCode


class ProductKind(StrEnum):
    VIRTUAL_NUMBER = "virtual_number"
    SOFTWARE = "software"


class Product(Frozen):
    sku: Identifier
    kind: ProductKind
    name: str = Field(min_length=1, max_length=200)


class Order(Frozen):
    order_id: Identifier
    customer_id: Identifier
    product: Product
    price: Money
    placed_at: AwareDatetime


class Role(StrEnum):
    BACKEND = "backend"
    SUPPORT = "support"
    CUSTOMER = "customer"
    SYSTEM = "system"


class Actor(Frozen):
    """Who did something: recorded with every event (R16)."""

    role: Role
    id: str = Field(min_length=1, max_length=128)

    def __str__(self) -> str:
        return f"{self.role.value}:{self.id}"


SYSTEM = Actor(role=Role.SYSTEM, id="refund-desk")


class ComplaintKind(StrEnum):
    SMS_NOT_RECEIVED = "sms_not_received"
    INVALID_NUMBER = "invalid_number"
    MAJOR_DEFECT = "major_defect"


class ComplaintStatus(StrEnum):
    UNDER_REVIEW = "under_review"
    AWAITING_ACCESS = "awaiting_access"
    RECTIFYING = "rectifying"
    ESCALATED = "escalated"
    AWAITING_REMEDY_CHOICE = "awaiting_remedy_choice"
    RECTIFIED = "rectified"
    REFUNDED = "refunded"
    REPLACED = "replaced"
    REJECTED = "rejected"
    ACCESS_REFUSED = "access_refused"
    WITHDRAWN = "withdrawn"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        ComplaintStatus.RECTIFIED,
        ComplaintStatus.REFUNDED,
        ComplaintStatus.REPLACED,
        ComplaintStatus.REJECTED,
        ComplaintStatus.ACCESS_REFUSED,
        ComplaintStatus.WITHDRAWN,
    }
)


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class DefectRejection(StrEnum):
    """R8: why support may reject a defect complaint."""

    USER_API_MISUSE = "user_api_misuse"
    THIRD_PARTY_INCOMPATIBILITY = "third_party_incompatibility"
    NOT_A_DEFECT = "not_a_defect"
    CONTRADICTS_TERMS = "contradicts_terms"


class ClaimRejection(StrEnum):
    """R5/R6: why support may reject a claim about a virtual number."""

    SMS_DELIVERED = "sms_delivered"
    """The provider's log shows the SMS reached the number (R5)."""
    NUMBER_VALID = "number_valid"
    """The number works: the evidence does not show it refused the code (R6)."""
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    CONTRADICTS_TERMS = "contradicts_terms"


RejectionReason = DefectRejection | ClaimRejection
"""Every reason a review may give; which ones fit which kind is `policy.complaint.REJECTION_REASONS`."""


class RemedyChoice(StrEnum):
    REFUND = "refund"
    REPLACEMENT = "replacement"


class EvidenceRef(Frozen):
    """An attachment as the workflow knows it (R6): a reference into the ledger's evidence store and what
    identifies the bytes there, never the bytes themselves."""

    ref: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)
    size: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ActivationStatus(StrEnum):
    """R1/R2: a rented number waits for its SMS, then is completed or canceled."""

    WAITING_FOR_SMS = "waiting_for_sms"
    COMPLETED = "completed"
    CANCELED = "canceled"


class ReplacementOffer(Frozen):
    """What the customer gets instead of a refund (R12): the same product, or one support offered."""

    sku: Identifier
    name: str = Field(min_length=1, max_length=200)
    value: Money


class RefundRecord(Frozen):
    amount: Money
    issued_at: datetime


class Resolution(Frozen):
    outcome: ComplaintStatus
    reason_code: str | None = None
    refund: RefundRecord | None = None
    replacement: ReplacementOffer | None = None


class ComplaintEvent(Frozen):
    """One line of the audit trail (R16). `seq` numbers a complaint's events from 1 without gaps."""

    seq: int
    at: datetime
    actor: str
    type: str
    detail: dict[str, Any] = Field(default_factory=dict)
