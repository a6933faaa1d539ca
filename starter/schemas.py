"""The HTTP shapes of API.md, and their translation from the policy's models.

This is the one place the wire format lives: money as decimal strings, times as ISO-8601 UTC, the error
body. The contract only grows: fields are added, never renamed or removed, so the models here carry API.md's
fields first and the additions after them.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)

from ledger.records import Balance
from policy.activation import ActivationState, CancelReason, PhoneNumber, ServiceName
from policy.complaint import ComplaintState, ServerCredentials, credentials_go_with_grant
from policy.evidence import MAX_FILE_BYTES, MAX_FILES, EvidenceFile
from policy.models import (
    ActivationStatus,
    AwareDatetime,
    ComplaintKind,
    ComplaintStatus,
    CurrencyCode,
    EvidenceRef,
    Identifier,
    Money,
    Order,
    Product,
    ProductKind,
    RefundRecord,
    RejectionReason,
    RemedyChoice,
    ReplacementOffer,
    ReviewDecision,
    canonical_amount,
)

# ------------------------------------------------------------------------------------------------ money


def format_amount(value: Decimal) -> str:
    """ "12.50", not "12.5000" nor "1.25E+1"."""
    return f"{canonical_amount(value):f}"


def _no_float(value: Any) -> Any:
    """A float has already lost the cents it was meant to carry (0.1 + 0.2): money comes as a string."""
    if isinstance(value, float):
        raise ValueError('send money as a decimal string, e.g. "12.50"')
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(ge=0, max_digits=18, decimal_places=4, examples=["12.50"]),
    PlainSerializer(format_amount, return_type=str, when_used="json"),
]
"""Money in a request or a response: a decimal string, never a float."""

UtcTime = Annotated[
    datetime,
    PlainSerializer(lambda v: v.astimezone(UTC).isoformat().replace("+00:00", "Z"), when_used="json"),
]
"""Every time the API answers with is ISO-8601 in UTC."""

MAX_CLOCK_SKEW = timedelta(minutes=5)


class Body(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


OutT = TypeVar("OutT", bound=Out)


# ----------------------------------------------------------------------------------------------- errors


class FieldError(Out):
    field: str = Field(description="Where in the request: dotted path, e.g. `body.product.kind`.")
    message: str


class ErrorDetail(Out):
    code: str = Field(description="Stable snake_case code: the policy's rule code or an HTTP-level one.")
    message: str = Field(description="A sentence for a person.")
    fields: list[FieldError] | None = Field(default=None, description="Only on validation errors.")


class ErrorBody(Out):
    error: ErrorDetail


# ----------------------------------------------------------------------------------------------- orders


class OrderIn(Body):
    order_id: Identifier
    customer_id: Identifier
    product: Product
    amount: Amount
    currency: CurrencyCode
    placed_at: AwareDatetime

    @field_validator("placed_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime) -> datetime:
        if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError("an order cannot be placed in the future")
        return value

    def to_order(self) -> Order:
        return Order(
            order_id=self.order_id,
            customer_id=self.customer_id,
            product=self.product,
            price=Money(amount=self.amount, currency=self.currency),
            placed_at=self.placed_at.astimezone(UTC),
        )


# ------------------------------------------------------------------------------------------- complaints

ContentType = Annotated[
    str, StringConstraints(max_length=100, pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")
]


class EvidenceIn(Body):
    """An attachment (R6): PNG, JPEG, GIF, WebP, PDF or plain text, at most 5 MiB, base64-encoded."""

    name: str = Field(min_length=1, max_length=255)
    content_type: ContentType
    data_base64: str = Field(min_length=1, max_length=(MAX_FILE_BYTES * 4) // 3 + 4)

    @field_validator("data_base64")
    @classmethod
    def _decodes(cls, value: str) -> str:
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not valid base64") from None
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f"a file may weigh {MAX_FILE_BYTES // (1024 * 1024)} MiB at most")
        return value

    def to_file(self) -> EvidenceFile:
        return EvidenceFile(
            name=self.name, content_type=self.content_type, data=base64.b64decode(self.data_base64)
        )


class ComplaintIn(Body):
    order_id: Identifier
    kind: ComplaintKind
    description: str = Field(min_length=1, max_length=20_000)
    evidence: list[EvidenceIn] = Field(
        default_factory=list, max_length=MAX_FILES, description="Required for `invalid_number` (R6)."
    )


class ReviewIn(Body):
    decision: ReviewDecision
    reason_code: RejectionReason | None = Field(
        default=None, description="Required with `reject`: R8's for a defect, R5/R6's for a claim."
    )
    note: str = Field(default="", max_length=5_000)


class AccessRequestIn(Body):
    scope: str = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=5_000)


class AccessIn(Body):
    grant: bool
    credentials: ServerCredentials | None = None

    @model_validator(mode="after")
    def _credentials_go_with_grant(self) -> AccessIn:
        credentials_go_with_grant(self.grant, self.credentials)
        return self


class FixIn(Body):
    note: str = Field(default="", max_length=5_000)


class RemedyIn(Body):
    choice: RemedyChoice


class ReplacementIn(Body):
    sku: Identifier
    name: str = Field(min_length=1, max_length=200)
    value: Amount
    currency: CurrencyCode | None = Field(default=None, description="Defaults to the order's currency.")


class WithdrawIn(Body):
    note: str = Field(default="", max_length=5_000)


class RefundOut(Out):
    amount: Amount
    currency: str
    issued_at: UtcTime

    @classmethod
    def of(cls, refund: RefundRecord | None) -> RefundOut | None:
        if refund is None:
            return None
        return cls(amount=refund.amount.amount, currency=refund.amount.currency, issued_at=refund.issued_at)


class ReplacementOut(Out):
    sku: str
    name: str
    value: Amount
    currency: str

    @classmethod
    def of(cls, offer: ReplacementOffer) -> ReplacementOut:
        return cls(sku=offer.sku, name=offer.name, value=offer.value.amount, currency=offer.value.currency)


class ResolutionOut(Out):
    outcome: ComplaintStatus
    reason_code: str | None
    refund: RefundOut | None = None
    replacement: ReplacementOut | None = None


class EventOut(Out):
    at: UtcTime
    actor: str
    type: str
    detail: dict[str, Any]
    seq: int


class AccessRequestOut(Out):
    """The latest access request (R9/R10). Credentials never appear: only whether access was granted."""

    scope: str
    reason: str
    requested_at: UtcTime
    answer_due: UtcTime
    answered_at: UtcTime | None
    granted: bool | None


class ReviewOut(Out):
    decision: ReviewDecision
    reason_code: RejectionReason | None
    note: str
    by: str
    at: UtcTime


class EvidenceOut(Out):
    """What was attached (R6): the reference support opens it by, never the bytes."""

    ref: str
    name: str
    content_type: str
    size: int
    sha256: str

    @classmethod
    def of(cls, evidence: EvidenceRef) -> EvidenceOut:
        return cls.model_validate(evidence, from_attributes=True)


def _copied(shape: type[OutT], source: BaseModel | None) -> OutT | None:
    """The fields of `shape` read off `source`: for records whose shape the API shows as they are."""
    return None if source is None else shape.model_validate(source, from_attributes=True)


class ComplaintSummary(Out):
    """A complaint without its events: what lists return."""

    complaint_id: str
    order_id: str
    customer_id: str
    kind: ComplaintKind
    status: ComplaintStatus
    description: str
    created_at: UtcTime
    deadline: UtcTime | None
    remedy_choice: RemedyChoice | None
    resolution: ResolutionOut | None
    # additions to API.md
    amount: Amount
    currency: str
    review: ReviewOut | None
    access_request: AccessRequestOut | None
    escalated_at: UtcTime | None
    remedy_choice_due: UtcTime | None
    replacement_offer: ReplacementOut | None
    evidence: list[EvidenceOut]

    @classmethod
    def fields_of(cls, state: ComplaintState) -> dict[str, Any]:
        resolution = state.resolution
        return {
            "complaint_id": state.complaint_id,
            "order_id": state.order.order_id,
            "customer_id": state.customer_id,
            "kind": state.kind,
            "status": state.status,
            "description": state.description,
            "created_at": state.created_at,
            "deadline": state.deadline,
            "remedy_choice": state.remedy_choice,
            "resolution": None
            if resolution is None
            else ResolutionOut(
                outcome=resolution.outcome,
                reason_code=resolution.reason_code,
                refund=RefundOut.of(resolution.refund),
                replacement=None
                if resolution.replacement is None
                else ReplacementOut.of(resolution.replacement),
            ),
            "amount": state.order.price.amount,
            "currency": state.order.price.currency,
            "review": _copied(ReviewOut, state.review),
            "access_request": _copied(AccessRequestOut, state.access),
            "escalated_at": state.escalated_at,
            "remedy_choice_due": state.remedy_choice_due,
            "replacement_offer": None
            if state.replacement_offer is None
            else ReplacementOut.of(state.replacement_offer),
            "evidence": [EvidenceOut.of(e) for e in state.evidence],
        }

    @classmethod
    def of(cls, state: ComplaintState) -> ComplaintSummary:
        return cls(**cls.fields_of(state))


class ComplaintOut(ComplaintSummary):
    """API.md's complaint: the summary plus its audit trail (R16)."""

    events: list[EventOut]

    @classmethod
    def of(cls, state: ComplaintState) -> ComplaintOut:
        events = [
            EventOut(at=e.at, actor=e.actor, type=e.type, detail=e.detail, seq=e.seq) for e in state.events
        ]
        return cls(**cls.fields_of(state), events=events)


class ComplaintPage(Out):
    items: list[ComplaintSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


def encode_cursor(state: ComplaintState) -> str:
    raw = json.dumps([state.created_at.isoformat(), state.complaint_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position after which the next page starts; `ValueError` for anything not made by `encode`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, complaint_id = json.loads(raw)
        at = datetime.fromisoformat(created_at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValueError("not a cursor this API made") from None
    if not isinstance(complaint_id, str) or at.tzinfo is None:
        raise ValueError("not a cursor this API made")
    return at, complaint_id


# ------------------------------------------------------------------------------------------ activations


class ActivationIn(Body):
    order_id: Identifier
    phone_number: PhoneNumber = Field(examples=["+447700900123"], description="E.164.")
    service: ServiceName = Field(examples=["whatsapp"])


class SmsIn(Body):
    text: str = Field(min_length=1, max_length=1_000)


class SmsOut(Out):
    text: str
    received_at: UtcTime


class ActivationOut(Out):
    """API.md's activation, then what a customer also wants to see: the number, the code, why it ended."""

    activation_id: str
    order_id: str
    status: ActivationStatus
    expires_at: UtcTime
    refund: RefundOut | None
    # additions to API.md
    customer_id: str
    phone_number: str
    service: str
    started_at: UtcTime
    sms: SmsOut | None
    canceled_at: UtcTime | None
    cancel_reason: CancelReason | None
    refund_refused: str | None = Field(description="Why a cancel returned nothing (already refunded).")

    @classmethod
    def of(cls, state: ActivationState) -> ActivationOut:
        return cls(
            activation_id=state.activation_id,
            order_id=state.order.order_id,
            status=state.status,
            expires_at=state.expires_at,
            refund=RefundOut.of(state.refund),
            customer_id=state.customer_id,
            phone_number=state.phone_number,
            service=state.service,
            started_at=state.started_at,
            sms=None
            if state.sms_text is None or state.completed_at is None
            else SmsOut(text=state.sms_text, received_at=state.completed_at),
            canceled_at=state.canceled_at,
            cancel_reason=state.cancel_reason,
            refund_refused=state.refund_refused,
        )


# ------------------------------------------------------------------------------------------ order views


class OrderOut(Out):
    order_id: str
    customer_id: str
    product: Product
    amount: Amount
    currency: str
    placed_at: UtcTime
    activation: ActivationOut | None = Field(
        default=None, description="The virtual number's activation (R1, R2), if any."
    )
    complaints: list[ComplaintSummary] = Field(default_factory=list)

    @classmethod
    def of(
        cls,
        order: Order,
        complaints: list[ComplaintState] | None = None,
        activation: ActivationState | None = None,
    ) -> OrderOut:
        return cls(
            order_id=order.order_id,
            customer_id=order.customer_id,
            product=order.product,
            amount=order.price.amount,
            currency=order.price.currency,
            placed_at=order.placed_at,
            activation=None if activation is None else ActivationOut.of(activation),
            complaints=[ComplaintSummary.of(c) for c in complaints or []],
        )


# ---------------------------------------------------------------------------------------------- balance


class BalanceEntryOut(Out):
    at: UtcTime
    kind: str
    amount: Amount
    currency: str
    refund_id: str


class BalanceOut(Out):
    customer_id: str
    currency: str
    balance: Amount
    entries: list[BalanceEntryOut] = Field(description="The entries in `currency`, oldest first.")
    balances: dict[str, Amount] = Field(description="Every currency the customer holds (an addition).")

    @classmethod
    def of(cls, balance: Balance, currency: str | None, default_currency: str) -> BalanceOut:
        """In the asked currency, else the customer's latest, else the shop's default."""
        chosen = currency or (balance.entries[-1].amount.currency if balance.entries else default_currency)
        return cls(
            customer_id=balance.customer_id,
            currency=chosen,
            balance=balance.totals.get(chosen, Decimal(0)),
            entries=[
                BalanceEntryOut(
                    at=e.at,
                    kind=e.kind,
                    amount=e.amount.amount,
                    currency=e.amount.currency,
                    refund_id=e.refund_id,
                )
                for e in balance.entries
                if e.amount.currency == chosen
            ],
            balances=dict(balance.totals),
        )


class Health(Out):
    status: str
    ledger: str
    temporal: str


__all__ = [
    "AccessIn",
    "AccessRequestIn",
    "ActivationIn",
    "ActivationOut",
    "BalanceOut",
    "ComplaintIn",
    "ComplaintOut",
    "ComplaintPage",
    "ComplaintSummary",
    "ErrorBody",
    "FixIn",
    "Health",
    "OrderIn",
    "OrderOut",
    "ProductKind",
    "RemedyIn",
    "ReplacementIn",
    "ReviewIn",
    "SmsIn",
    "WithdrawIn",
]
