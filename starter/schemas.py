"""The HTTP shapes of API.md, and their translation from the policy's models.

This is the one place the wire format lives: money as decimal strings, times as ISO-8601 UTC, the error
body. The contract only grows: fields are added, never renamed or removed, so the models here carry API.md's
fields first and the additions after them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import Path
from pydantic import (
    AfterValidator,
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
from policy.evidence import MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES, EvidenceFile
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


PLAIN_DECIMAL = re.compile(r"[0-9]{1,32}(\.[0-9]{1,32})?")


def _plain_decimal(value: Any) -> Any:
    """A float has already lost the cents it was meant to carry (0.1 + 0.2): money comes as a string, and
    as plain digits: Python's `Decimal` would also read "1_000", " 12.5 ", "-0", "1E+3" and "NaN", which
    no client means as money ("-0" would even come back as "-0.00")."""
    if isinstance(value, float):
        raise ValueError('send money as a decimal string, e.g. "12.50"')
    if isinstance(value, str) and not PLAIN_DECIMAL.fullmatch(value):
        raise ValueError('send money as plain digits with an optional decimal point, e.g. "12.50"')
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_plain_decimal),
    Field(ge=0, max_digits=18, decimal_places=4, examples=["12.50"]),
    PlainSerializer(format_amount, return_type=str, when_used="json"),
]
"""Money in a request: a decimal string, never a float."""

AmountOut = Annotated[
    Decimal,
    PlainSerializer(format_amount, return_type=str, when_used="json"),
    Field(examples=["12.50"]),
]
"""Money in a response. Unbounded, unlike `Amount`: a balance adds up refunds that each fit in 18 digits,
and their sum need not (a bound here would turn a large balance into a 500)."""

UtcTime = Annotated[
    datetime,
    PlainSerializer(lambda v: v.astimezone(UTC).isoformat().replace("+00:00", "Z"), when_used="json"),
]
"""Every time the API answers with is ISO-8601 in UTC."""

MAX_CLOCK_SKEW = timedelta(minutes=5)

MAX_BODY_BYTES = 4 * math.ceil(MAX_TOTAL_BYTES / 3) + 1024 * 1024
"""The largest request body the API reads (about 15 MB): a complaint with the most evidence R6 accepts,
base64-encoded, plus a mebibyte for the rest of the JSON. Anything larger is a 413 before it is read into
memory, instead of being parsed whole only to be refused."""

LINE_BREAKS = frozenset("\t\n\r")
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _free_text(value: str) -> str:
    """What a person writes (a description, a note): any script and emoji, with line breaks and tabs, but
    no other control character. A NUL in particular cannot be stored in a PostgreSQL text column."""
    for char in value:
        if unicodedata.category(char) == "Cc" and char not in LINE_BREAKS:
            raise ValueError(f"contains the control character U+{ord(char):04X}")
    return value


def _name(value: str) -> str:
    """A one-line name (a product, a file): no control character and no bidirectional override, which
    would let `invoice\u202efdp.exe` show support an `invoiceexe.pdf`."""
    for char in value:
        if unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS:
            raise ValueError(f"contains the control character U+{ord(char):04X}")
    return value


FreeText = Annotated[str, AfterValidator(_free_text)]
Name = Annotated[str, AfterValidator(_name)]

ComplaintId = Annotated[
    str,
    Path(
        max_length=200,
        description="As the API gave it: `{order_id}.{kind}.{suffix}`.",
        examples=["ord-1001.major_defect.9f86d081"],
    ),
]
"""A complaint id in a path. The bound keeps a hostile id from reaching Temporal, which refuses workflow
ids longer than it allows with an error that is not "not found"."""

ActivationId = Annotated[
    str, Path(max_length=100, description="As the API gave it: `act_{order_id}`.", examples=["act_ord-1001"])
]


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


def _iso_text(value: Any) -> Any:
    """Times come as ISO-8601 text: pydantic would also read `12345` or "12345" as seconds since 1970."""
    if not isinstance(value, str):
        raise ValueError("send the time as ISO-8601 text, e.g. 2026-01-31T12:00:00Z")
    try:
        float(value)
    except ValueError:
        return value
    raise ValueError("send the time as ISO-8601 text, e.g. 2026-01-31T12:00:00Z")


class OrderIn(Body):
    order_id: Identifier
    customer_id: Identifier
    product: Product
    amount: Amount = Field(gt=0, description="More than zero: a free order has nothing to refund.")
    currency: CurrencyCode
    placed_at: Annotated[AwareDatetime, BeforeValidator(_iso_text)]

    @field_validator("product")
    @classmethod
    def _product_name(cls, value: Product) -> Product:
        _name(value.name)
        return value

    @field_validator("placed_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime) -> datetime:
        try:
            utc = value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the first instant a datetime holds
            raise ValueError("the time is out of range") from None
        if utc > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError("an order cannot be placed in the future")
        return utc

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


def decode_base64(text: str) -> bytes:
    """Standard base64, strictly: characters outside its alphabet are an error, not skipped."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


class EvidenceIn(Body):
    """An attachment (R6): PNG, JPEG, GIF, WebP, PDF or plain text, at most 5 MiB, base64-encoded."""

    name: Name = Field(min_length=1, max_length=255)
    content_type: ContentType
    data_base64: str = Field(min_length=1, max_length=(MAX_FILE_BYTES * 4) // 3 + 4)

    @field_validator("data_base64")
    @classmethod
    def _decodes(cls, value: str) -> str:
        if len(decode_base64(value)) > MAX_FILE_BYTES:
            raise ValueError(f"a file may weigh {MAX_FILE_BYTES // (1024 * 1024)} MiB at most")
        return value

    def to_file(self) -> EvidenceFile:
        return EvidenceFile(
            name=self.name, content_type=self.content_type, data=base64.b64decode(self.data_base64)
        )


class ComplaintIn(Body):
    order_id: Identifier
    kind: ComplaintKind
    description: FreeText = Field(min_length=1, max_length=20_000)
    evidence: list[EvidenceIn] = Field(
        default_factory=list, max_length=MAX_FILES, description="Required for `invalid_number` (R6)."
    )


class ReviewIn(Body):
    decision: ReviewDecision
    reason_code: RejectionReason | None = Field(
        default=None, description="Required with `reject`: R8's for a defect, R5/R6's for a claim."
    )
    note: FreeText = Field(default="", max_length=5_000)


class AccessRequestIn(Body):
    scope: FreeText = Field(min_length=1, max_length=500)
    reason: FreeText = Field(min_length=1, max_length=5_000)


class AccessIn(Body):
    grant: bool = Field(
        strict=True,
        description='JSON `true` or `false`: a refusal ends the complaint (R9), so "no" is not guessed at.',
    )
    credentials: ServerCredentials | None = None

    @model_validator(mode="after")
    def _credentials_go_with_grant(self) -> AccessIn:
        credentials_go_with_grant(self.grant, self.credentials)
        return self


class FixIn(Body):
    note: FreeText = Field(default="", max_length=5_000)


class RemedyIn(Body):
    choice: RemedyChoice


class ReplacementIn(Body):
    sku: Identifier
    name: Name = Field(min_length=1, max_length=200)
    value: Amount = Field(gt=0)
    currency: CurrencyCode | None = Field(default=None, description="Defaults to the order's currency.")


class WithdrawIn(Body):
    note: FreeText = Field(default="", max_length=5_000)


class RefundOut(Out):
    amount: AmountOut
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
    value: AmountOut
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
    amount: AmountOut
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
        if not isinstance(complaint_id, str) or at.tzinfo is None:
            raise ValueError("not a cursor this API made")
        at = at.astimezone(UTC)  # 9999-12-31T23:59:59-12:00 overflows here, not in the ledger's query
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError):
        raise ValueError("not a cursor this API made") from None
    return at, complaint_id


# ------------------------------------------------------------------------------------------ activations


class ActivationIn(Body):
    order_id: Identifier
    phone_number: PhoneNumber = Field(examples=["+447700900123"], description="E.164.")
    service: ServiceName = Field(examples=["whatsapp"])


class SmsIn(Body):
    text: FreeText = Field(min_length=1, max_length=1_000)


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
    amount: AmountOut
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
    amount: AmountOut
    currency: str
    refund_id: str


class BalanceOut(Out):
    customer_id: str
    currency: str
    balance: AmountOut
    entries: list[BalanceEntryOut] = Field(description="The entries in `currency`, oldest first.")
    balances: dict[str, AmountOut] = Field(description="Every currency the customer holds (an addition).")

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
