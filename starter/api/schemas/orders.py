"""An order as the backend records it, and as the API shows it with its activation and complaints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from policy.activation import ActivationState
from policy.complaint import ComplaintState
from policy.models import (
    AwareDatetime,
    CurrencyCode,
    Identifier,
    Money,
    Order,
    Product,
)
from starter.api.schemas.activations import ActivationOut
from starter.api.schemas.common import (
    MAX_CLOCK_SKEW,
    Amount,
    AmountOut,
    Body,
    Out,
    UtcTime,
    check_name,
)
from starter.api.schemas.complaints import ComplaintSummary

EmailAddress = Annotated[
    str,
    Field(min_length=3, max_length=254, pattern=r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:]+$"),
]
"""An address to send to: one @, a dot in the domain, nothing that would break a mail header."""


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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_id": "ord-1001",
                    "customer_id": "cust-1",
                    "amount": "49.90",
                    "currency": "EUR",
                    "product": {"sku": "plugin-seo-pro", "kind": "software", "name": "SEO Pro plugin"},
                    "placed_at": "2026-11-30T12:00:00Z",
                    "customer_email": "ada@example.com",
                }
            ]
        },
    )

    order_id: Identifier
    customer_id: Identifier
    product: Product
    amount: Amount = Field(gt=0, description="More than zero: a free order has nothing to refund.")
    currency: CurrencyCode
    placed_at: Annotated[AwareDatetime, BeforeValidator(_iso_text)]
    customer_email: EmailAddress | None = Field(
        default=None,
        description=(
            "Where the customer's notices go (R9's access request, R12's choice, refunds). Kept sealed, "
            "never shown back; without one, a notice to the customer is recorded as undeliverable."
        ),
    )

    @field_validator("product")
    @classmethod
    def _product_name(cls, value: Product) -> Product:
        check_name(value.name)
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
