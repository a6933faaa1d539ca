"""The outbox as support reads it: each notice's delivery and its state."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledger.notices import NoticeDelivery
from starter.api.schemas.common import Out, UtcTime

DeliveryStatus = Literal["pending", "sent", "failed", "undeliverable"]


class NoticeOut(Out):
    delivery_id: int
    channel: Literal["email", "webhook"]
    to: str = Field(description="`support`, `customer:<id>`, or a webhook endpoint's id; never an address.")
    what: str | None = Field(description="The notice's template (email) or the event's type (webhook).")
    about: str | None = Field(description="The complaint or activation the notice is about.")
    status: DeliveryStatus
    attempts: int
    last_status: int | None = Field(description="The receiver's last HTTP status, for a webhook.")
    last_error: str | None = Field(description="Why the last attempt failed: its kind, never a body.")
    created_at: UtcTime
    next_attempt_at: UtcTime
    finished_at: UtcTime | None

    @classmethod
    def of(cls, delivery: NoticeDelivery) -> NoticeOut:
        return cls.model_validate(delivery.model_dump())


class NoticePage(Out):
    items: list[NoticeOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null at the end."
    )
