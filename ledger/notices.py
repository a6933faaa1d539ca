"""What support sees of the outbox: every delivery of every notice, its state, and why the last try
failed. A failed delivery shows up here (and through `GET /v1/notices?status=failed`); so do the notices of
one complaint. Only who a message is for is shown (`support`, `customer:<id>`, a webhook endpoint's id),
never an address."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.deliveries import EMAIL, WEBHOOK
from ledger.schema import DeliveryRow, NotificationRow, WebhookEventRow
from policy.models import Frozen


class NoticeDelivery(Frozen):
    delivery_id: int
    channel: str
    to: str
    """`support`, `customer:<id>`, or the webhook endpoint's id."""
    what: str | None
    """The notice's template for an email, the event's type for a webhook."""
    about: str | None
    """The complaint (or activation) the notice is about."""
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None


class Notices:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def deliveries(
        self,
        *,
        status: str | None = None,
        about: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[NoticeDelivery]:
        """Newest first; `status` and `about` (a complaint id) narrow it; `before_id` pages on."""
        query = _query()
        if status is not None:
            query = query.where(DeliveryRow.status == status)
        if about is not None:
            query = query.where(DeliveryRow.sequence_key == about)
        if before_id is not None:
            query = query.where(DeliveryRow.id < before_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(DeliveryRow.id.desc()).limit(limit))).all()
        return [_delivery(row) for row in rows]


def _query() -> Any:
    email = and_(DeliveryRow.channel == EMAIL, DeliveryRow.source_id == NotificationRow.id)
    hook = and_(DeliveryRow.channel == WEBHOOK, DeliveryRow.source_id == WebhookEventRow.id)
    return (
        select(DeliveryRow, NotificationRow.template, WebhookEventRow.type)
        .select_from(DeliveryRow)
        .outerjoin(NotificationRow, email)
        .outerjoin(WebhookEventRow, hook)
    )


def _delivery(row: Any) -> NoticeDelivery:
    """A row of `_query`: the delivery's columns flat, then the template and the event type."""
    return NoticeDelivery(
        delivery_id=row.id,
        channel=row.channel,
        to=row.destination,
        what=row.template if row.channel == EMAIL else row.type,
        about=row.sequence_key,
        status=row.status,
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        finished_at=row.finished_at,
    )
