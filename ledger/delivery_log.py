"""The delivery log of a webhook endpoint, as the shop's backend reads it, and its one action: send again.

Each delivery carries one event to one endpoint (`ledger.deliveries`); the log shows it newest first with
the event's id and type and every attempt made at it: when, the outcome, the receiver's status and how long
it took. Redelivering puts a delivery back in the queue as if it were new: pending, due at once, retried
for another `delivery_retry_for`, with the same message id, so a receiver that already has the event sees
the same `webhook-id` again and can drop it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.deliveries import PENDING, WEBHOOK
from ledger.schema import DeliveryAttemptRow, DeliveryRow, WebhookEventRow
from policy.models import Frozen


class DeliveryNotFound(Exception):
    """No delivery has this id, or none to the endpoint it was asked of."""


class AttemptRecord(Frozen):
    attempted_at: datetime
    outcome: str
    """The delivery's status this attempt left it in: `sent`, `pending` (to be retried), `failed`, or
    `undeliverable`."""
    status_code: int | None
    latency_ms: int
    error: str | None


class DeliveryRecord(Frozen):
    """One delivery of an event to an endpoint, and every attempt at it, oldest first."""

    delivery_id: int
    endpoint_id: str
    event_id: str
    event_type: str | None
    """None if the event row is gone (nothing deletes one; kept optional so the log never fails)."""
    status: str
    created_at: datetime
    next_attempt_at: datetime
    expires_at: datetime
    finished_at: datetime | None
    attempts: list[AttemptRecord]


class DeliveryLog:
    """Reads of the `deliveries` of webhook endpoints, and `redeliver`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def deliveries_of_endpoint(
        self, endpoint_id: str, limit: int, before_id: int | None = None
    ) -> list[DeliveryRecord]:
        """Up to `limit` deliveries to the endpoint, newest first; with `before_id`, those older than it
        (keyset paging on the delivery id, which only grows)."""
        query = _deliveries().where(DeliveryRow.destination == endpoint_id)
        if before_id is not None:
            query = query.where(DeliveryRow.id < before_id)
        query = query.order_by(DeliveryRow.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            attempts = await _attempts(conn, [row.id for row in rows])
        return [_record(row, attempts.get(row.id, [])) for row in rows]

    async def delivery(self, delivery_id: int, endpoint_id: str) -> DeliveryRecord:
        """One delivery to the endpoint with its attempts; `DeliveryNotFound` if it is not the endpoint's."""
        query = _deliveries().where(DeliveryRow.id == delivery_id, DeliveryRow.destination == endpoint_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
            if row is None:
                raise DeliveryNotFound(delivery_id)
            attempts = await _attempts(conn, [delivery_id])
        return _record(row, attempts.get(delivery_id, []))

    async def redeliver(
        self, delivery_id: int, endpoint_id: str, now: datetime, retry_for: timedelta
    ) -> DeliveryRecord:
        """Send the delivery again: pending, due at `now`, expiring at `now + retry_for`, its lease and
        finish cleared and its retry count back to zero (the backoff starts over; the log keeps every
        attempt). Only a delivery to `endpoint_id` is found; any other is `DeliveryNotFound`.

        A delivery being sent right now is sent once more after it: delivery is at least once, and the
        receiver deduplicates on the unchanged `webhook-id`."""
        mine = (
            DeliveryRow.id == delivery_id,
            DeliveryRow.destination == endpoint_id,
            DeliveryRow.channel == WEBHOOK,
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(DeliveryRow)
                .where(*mine)
                .values(
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    expires_at=now + retry_for,
                    lease_owner=None,
                    lease_until=None,
                    finished_at=None,
                )
            )
        if result.rowcount != 1:
            raise DeliveryNotFound(delivery_id)
        return await self.delivery(delivery_id, endpoint_id)


def _deliveries() -> Any:
    """Webhook deliveries joined to the event each carries (by the event row's id, `source_id`)."""
    return (
        select(
            DeliveryRow.id,
            DeliveryRow.destination,
            DeliveryRow.message_id,
            DeliveryRow.status,
            DeliveryRow.created_at,
            DeliveryRow.next_attempt_at,
            DeliveryRow.expires_at,
            DeliveryRow.finished_at,
            WebhookEventRow.event_id,
            WebhookEventRow.type,
        )
        .select_from(DeliveryRow)
        .outerjoin(WebhookEventRow, DeliveryRow.source_id == WebhookEventRow.id)
        .where(DeliveryRow.channel == WEBHOOK)
    )


async def _attempts(conn: AsyncConnection, delivery_ids: Sequence[int]) -> dict[int, list[AttemptRecord]]:
    """The attempts at each of the deliveries, oldest first."""
    if not delivery_ids:
        return {}
    rows = await conn.execute(
        select(DeliveryAttemptRow)
        .where(DeliveryAttemptRow.delivery_id.in_(delivery_ids))
        .order_by(DeliveryAttemptRow.attempted_at, DeliveryAttemptRow.id)
    )
    found: dict[int, list[AttemptRecord]] = {}
    for row in rows.all():
        found.setdefault(row.delivery_id, []).append(
            AttemptRecord(
                attempted_at=row.attempted_at,
                outcome=row.outcome,
                status_code=row.status_code,
                latency_ms=row.latency_ms,
                error=row.error,
            )
        )
    return found


def _record(row: Any, attempts: list[AttemptRecord]) -> DeliveryRecord:
    return DeliveryRecord(
        delivery_id=row.id,
        endpoint_id=row.destination,
        event_id=row.event_id or row.message_id,
        event_type=row.type,
        status=row.status,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        expires_at=row.expires_at,
        finished_at=row.finished_at,
        attempts=attempts,
    )
