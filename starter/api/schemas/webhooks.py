"""Webhook endpoints as the backend registers and reads them, their secrets (shown once), and their
delivery logs."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from dispatch.events import ALL_TYPES, COMPLAINT_REFUNDED, COMPLAINT_STATUS_CHANGED, EVENT_TYPES
from ledger.delivery_log import AttemptRecord, DeliveryRecord
from ledger.webhook_endpoints import WebhookEndpoint
from starter.api.schemas.common import Body, FreeText, Out, UtcTime

MAX_OVERLAP_SECONDS = 7 * 24 * 3600
"""The longest a rotated secret keeps signing: a week is time enough for any receiver to switch."""

EventType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="One of " + ", ".join(f"`{t}`" for t in EVENT_TYPES) + f"; or `{ALL_TYPES}`, every type.",
        examples=[COMPLAINT_REFUNDED],
    ),
]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES) + 1)]

SECRET_DESCRIPTION = (
    "The signing secret (`whsec_...`), shown this once: the API keeps it only sealed and never shows it "
    "again. Verify deliveries with it (a Standard Webhooks library)."
)


class WebhookEndpointIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://shop.example.com/hooks/refund-desk",
                    "event_types": [COMPLAINT_STATUS_CHANGED, COMPLAINT_REFUNDED],
                    "description": "the shop's order service",
                }
            ]
        },
    )

    url: str = Field(
        min_length=1, max_length=2048, description="http or https, with a host; not this API's own address."
    )
    event_types: EventTypes
    description: FreeText = Field(default="", max_length=500)


class WebhookEndpointPatch(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"enabled": False}, {"event_types": [ALL_TYPES]}]},
    )

    enabled: bool | None = Field(default=None, description="A disabled endpoint is sent nothing.")
    event_types: EventTypes | None = None


class RotateSecretIn(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"overlap_seconds": 86400}]})

    overlap_seconds: int = Field(
        default=86400,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long the secret being replaced still signs, beside the new one (0: not at all).",
    )


class WebhookEndpointOut(Out):
    endpoint_id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    created_at: UtcTime
    updated_at: UtcTime
    previous_secret_expires_at: UtcTime | None = Field(
        description="Until when the secret before the last rotation also signs; null if none does."
    )

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookEndpointOut:
        return cls.model_validate(endpoint.model_dump())


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description=SECRET_DESCRIPTION)

    @classmethod
    def made(cls, endpoint: WebhookEndpoint, secret: str) -> WebhookEndpointCreated:
        return cls.model_validate({**endpoint.model_dump(), "secret": secret})


class RotatedSecret(Out):
    endpoint_id: str
    secret: str = Field(description=SECRET_DESCRIPTION)
    previous_secret_expires_at: UtcTime | None = Field(
        description="Until when the replaced secret also signs; null for a rotation without overlap."
    )


class WebhookEndpointList(Out):
    items: list[WebhookEndpointOut]


class AttemptOut(Out):
    attempted_at: UtcTime
    outcome: str = Field(
        description="`sent`; `pending`: failed, tried again later; `failed`: failed and retried no more; "
        "`undeliverable`: the endpoint was disabled or deleted."
    )
    status_code: int | None = Field(description="The receiver's HTTP status; null if none came.")
    latency_ms: int
    error: str | None = Field(description="Why it failed, in a few words; null when it was sent.")

    @classmethod
    def of(cls, attempt: AttemptRecord) -> AttemptOut:
        return cls.model_validate(attempt.model_dump())


class DeliveryOut(Out):
    delivery_id: int
    event_id: str = Field(description="The `webhook-id` every attempt carries.")
    event_type: str | None
    status: str = Field(description="`pending`, `sent`, `failed` or `undeliverable`.")
    created_at: UtcTime
    next_attempt_at: UtcTime
    expires_at: UtcTime = Field(description="When a pending delivery stops being retried.")
    finished_at: UtcTime | None
    attempts: list[AttemptOut] = Field(description="Every attempt, oldest first.")

    @classmethod
    def of(cls, delivery: DeliveryRecord) -> DeliveryOut:
        fields = delivery.model_dump(exclude={"attempts", "endpoint_id"})
        return cls(**fields, attempts=[AttemptOut.of(a) for a in delivery.attempts])


class DeliveryPage(Out):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


MAX_DELIVERY_ID = 2**31 - 1
"""The largest id the ledger's integer column holds: a larger one in a path or cursor is no delivery."""


def encode_delivery_cursor(delivery_id: int) -> str:
    return f"d{delivery_id}"


def decode_delivery_cursor(cursor: str) -> int:
    """The delivery id the next page starts before; `ValueError` for anything not made by the encoder."""
    digits = cursor.removeprefix("d")
    if digits == cursor or not digits.isascii() or not digits.isdigit() or len(digits) > 10:
        raise ValueError("not a cursor this API made")
    value = int(digits)
    if not 1 <= value <= MAX_DELIVERY_ID:
        raise ValueError("not a cursor this API made")
    return value
