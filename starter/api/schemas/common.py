"""The wire format every resource's shapes share: money, times, free text, the error body.

Money travels as decimal strings, times as ISO-8601 UTC. The contract (docs/api.md) only grows: fields are
added, never renamed or removed, so each resource's models carry the contract's first fields first and the
additions after them. Each resource's own shapes live beside this module, one module per resource.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from policy.evidence import MAX_TOTAL_BYTES
from policy.models import (
    RefundRecord,
    ReplacementOffer,
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


AMOUNT_SCHEMA = {
    "type": "string",
    "format": "decimal",
    "pattern": f"^{PLAIN_DECIMAL.pattern}$",
    "description": "A decimal string: plain digits with an optional decimal point, at most 4 decimals.",
    "examples": ["12.50"],
}

Amount = Annotated[
    Decimal,
    BeforeValidator(_plain_decimal),
    Field(ge=0, max_digits=18, decimal_places=4),
    PlainSerializer(format_amount, return_type=str, when_used="json"),
    WithJsonSchema(AMOUNT_SCHEMA, mode="validation"),
]
"""Money in a request: a decimal string, never a float (OpenAPI says so: a client generated from it sends
a string)."""

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


def check_name(value: str) -> str:
    """A one-line name (a product, a file): no control character and no bidirectional override, which
    would let `invoice\u202efdp.exe` show support an `invoiceexe.pdf`."""
    for char in value:
        if unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS:
            raise ValueError(f"contains the control character U+{ord(char):04X}")
    return value


FreeText = Annotated[str, AfterValidator(_free_text)]
Name = Annotated[str, AfterValidator(check_name)]


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


def decode_base64(text: str) -> bytes:
    """Standard base64, strictly: characters outside its alphabet are an error, not skipped."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


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


class Health(Out):
    status: str
    ledger: str
    temporal: str
