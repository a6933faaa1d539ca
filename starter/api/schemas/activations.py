"""A rented number's activation (R1, R2): starting it, its SMS, and how it is shown."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import (
    ConfigDict,
    Field,
)

from policy.activation import ActivationState, CancelReason, PhoneNumber, ServiceName
from policy.models import (
    ActivationStatus,
    Identifier,
)
from starter.api.schemas.common import (
    Body,
    FreeText,
    Out,
    RefundOut,
    UtcTime,
)

ActivationId = Annotated[
    str, Path(max_length=100, description="As the API gave it: `act_{order_id}`.", examples=["act_ord-1001"])
]


class ActivationIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"order_id": "num-1001", "phone_number": "+447700900123", "service": "whatsapp"}]
        },
    )

    order_id: Identifier
    phone_number: PhoneNumber = Field(examples=["+447700900123"], description="E.164.")
    service: ServiceName = Field(examples=["whatsapp"])


class SmsIn(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "Your WhatsApp code: 123-456"}]})

    text: FreeText = Field(min_length=1, max_length=1_000)


class SmsOut(Out):
    text: str
    received_at: UtcTime


class ActivationOut(Out):
    """docs/api.md's activation, then what a customer also wants: the number, the code, why it ended."""

    activation_id: str
    order_id: str
    status: ActivationStatus
    expires_at: UtcTime
    refund: RefundOut | None
    # additions to docs/api.md
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
