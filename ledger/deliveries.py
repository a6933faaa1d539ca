"""Deliveries: one per message and destination, and what the dispatcher does with them.

The ledger creates them (`add_notice`, `announce`) inside the transaction that records the event
they tell of, so a state change and its notices are never one without the other. A dispatcher then
`claim`s the due ones for a lease, sends each, and records the attempt (`record_sent`, `record_retry`,
`record_undeliverable`); a record only counts under the lease that claimed the row, so a dispatcher that
lost its lease (it stalled, another took over) changes nothing. Delivery is therefore at least once, and a
receiver deduplicates on `message_id`.

Order: a row is due only when no earlier row for the same destination and `sequence_key` (the complaint or
activation it is about) is still pending, so each receiver hears of a complaint's events in the order they
happened, retries included. Several dispatchers may claim at once: on PostgreSQL the candidates are locked
`FOR UPDATE SKIP LOCKED`; on SQLite writes are serial, and the claim's update re-checks the lease.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy import insert as plain_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import aliased

from dispatch.events import WebhookEvent, wanted
from ledger.records import Notification
from ledger.schema import (
    DeliveryAttemptRow,
    DeliveryRow,
    NotificationRow,
    WebhookEndpointRow,
    WebhookEventRow,
)
from policy.ids import ACTIVATION_PREFIX

PENDING: Final = "pending"
SENT: Final = "sent"
FAILED: Final = "failed"
UNDELIVERABLE: Final = "undeliverable"
"""A message with nowhere to go (a customer who gave no email address): recorded, never retried."""

EMAIL: Final = "email"
WEBHOOK: Final = "webhook"

FIRST_RETRY = timedelta(seconds=5)
LONGEST_WAIT = timedelta(hours=1)
"""Retries back off from `FIRST_RETRY`, doubling, to at most `LONGEST_WAIT` apart."""

Insert = Callable[..., Any]
"""The dialect's insert (`sqlite.insert` or `postgresql.insert`), for `on_conflict_do_nothing`."""


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery: what to send, to whom, and under which lease."""

    id: int
    channel: str
    destination: str
    message_id: str
    source_id: int
    sequence_key: str | None
    attempts: int
    expires_at: datetime
    lease_owner: str


@dataclass(frozen=True)
class Notice:
    """An outbox notice, as its email is made from it."""

    recipient: str
    template: str
    payload: dict[str, Any]
    complaint_id: str | None
    activation_id: str | None


@dataclass(frozen=True)
class Attempt:
    """What one try at sending a delivery came to: the receiver's status and how long it took."""

    latency_ms: int
    status_code: int | None = None
    error: str | None = None


def backoff(attempts: int) -> timedelta:
    """The wait before the next try, after `attempts` failed ones."""
    wait: timedelta = FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 20)
    return min(wait, LONGEST_WAIT)


def message_id_of(dedupe_key: str) -> str:
    """The stable id of a notice's email: the same for every attempt, so receivers can deduplicate."""
    return f"ntf_{hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]}"


# ------------------------------------------------------------------------------------------ creating


async def add_notice(
    conn: AsyncConnection, insert: Insert, message: Notification, *, now: datetime, retry_for: timedelta
) -> None:
    """An outbox notice, once, with the delivery of its email."""
    notification_id = await _once(
        conn,
        insert,
        NotificationRow.dedupe_key,
        dedupe_key=message.dedupe_key,
        recipient=message.recipient,
        template=message.template,
        complaint_id=message.complaint_id,
        payload_json=json.dumps(message.payload, sort_keys=True, default=str),
        created_at=now,
    )
    key = message.dedupe_key
    await _deliver(
        conn,
        insert,
        Route(EMAIL, message.recipient, message_id_of(key), message.complaint_id or message.recipient),
        f"{EMAIL}:{message.recipient}:{key}",
        notification_id,
        now,
        retry_for,
    )


async def announce(
    conn: AsyncConnection,
    insert: Insert,
    events: Sequence[WebhookEvent],
    *,
    now: datetime,
    retry_for: timedelta,
) -> None:
    """Each event, with a delivery to every enabled endpoint subscribed to its type at this instant."""
    if not events:
        return
    rows = await conn.execute(
        select(WebhookEndpointRow.endpoint_id, WebhookEndpointRow.event_types_json).where(
            WebhookEndpointRow.enabled.is_(True)
        )
    )
    subscriptions = [(endpoint, json.loads(types)) for endpoint, types in rows.all()]
    for event in events:
        endpoints = [endpoint for endpoint, types in subscriptions if wanted(types, event.type)]
        await add_webhook_event(conn, insert, event, endpoints, now=now, retry_for=retry_for)


async def add_webhook_event(
    conn: AsyncConnection,
    insert: Insert,
    event: WebhookEvent,
    endpoints: Sequence[str],
    *,
    now: datetime,
    retry_for: timedelta,
) -> None:
    """The event once, and one delivery of it to each endpoint subscribed to its type."""
    row_id = await _once(
        conn,
        insert,
        WebhookEventRow.event_id,
        event_id=event.id,
        type=event.type,
        occurred_at=event.occurred_at,
        sequence_key=event.sequence_key,
        data_json=json.dumps(event.data, sort_keys=True, default=str),
        created_at=now,
    )
    for endpoint in endpoints:
        route = Route(WEBHOOK, endpoint, event.id, event.sequence_key)
        await _deliver(conn, insert, route, f"{WEBHOOK}:{endpoint}:{event.id}", row_id, now, retry_for)


@dataclass(frozen=True)
class Route:
    """Where a delivery goes and what it carries: its channel, destination, the id its receiver
    deduplicates on, and the complaint (or activation) that orders it among the destination's others."""

    channel: str
    destination: str
    message_id: str
    sequence_key: str


async def _once(conn: AsyncConnection, insert: Insert, key: Any, **values: Any) -> int:
    """Insert a row unless one with its unique `key` column's value is there; either way, its id."""
    table = key.class_
    await conn.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=[key.key]))
    row_id: int = (await conn.execute(select(table.id).where(key == values[key.key]))).scalar_one()
    return row_id


async def _deliver(
    conn: AsyncConnection,
    insert: Insert,
    route: Route,
    delivery_key: str,
    source_id: int,
    now: datetime,
    retry_for: timedelta,
) -> None:
    """One delivery, pending and due now, once per `delivery_key` (a retried activity adds nothing)."""
    await conn.execute(
        insert(DeliveryRow)
        .values(
            delivery_key=delivery_key,
            channel=route.channel,
            destination=route.destination,
            message_id=route.message_id,
            source_id=source_id,
            sequence_key=route.sequence_key,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            expires_at=now + retry_for,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["delivery_key"])
    )


# ----------------------------------------------------------------------------------------- claiming


class Deliveries:
    """The dispatcher's side of the deliveries table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    async def claim(self, owner: str, *, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        """Up to `limit` due deliveries, held for `owner` until `now + lease`, oldest first."""
        row = DeliveryRow
        earlier = aliased(DeliveryRow)
        blocked = exists().where(
            earlier.destination == row.destination,
            earlier.sequence_key == row.sequence_key,
            earlier.id < row.id,
            earlier.status == PENDING,
        )
        free = or_(row.lease_until.is_(None), row.lease_until < now)
        due = select(row.id).where(row.status == PENDING, row.next_attempt_at <= now, free, ~blocked)
        due = due.order_by(row.id).limit(limit)
        if self._postgres:
            due = due.with_for_update(skip_locked=True, of=row)
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(due)).scalars())
            if not ids:
                return []
            claimed = await conn.execute(
                update(row)
                .where(row.id.in_(ids), row.status == PENDING, free)
                .values(lease_owner=owner, lease_until=now + lease)
                .returning(row)
            )
            rows = sorted(claimed.all(), key=lambda r: r.id)
        return [_delivery(r) for r in rows]

    async def record_sent(self, delivery: Delivery, attempt: Attempt, now: datetime) -> bool:
        return await self._finish(delivery, attempt, now, SENT, {"finished_at": now})

    async def record_undeliverable(self, delivery: Delivery, reason: str, now: datetime) -> bool:
        attempt = Attempt(latency_ms=0, error=reason)
        return await self._finish(delivery, attempt, now, UNDELIVERABLE, {"finished_at": now})

    async def record_retry(self, delivery: Delivery, attempt: Attempt, now: datetime) -> bool:
        """A failed attempt: tried again after `backoff`, unless that is past the delivery's expiry, when
        it is marked failed for good."""
        attempts = delivery.attempts + 1
        next_at = now + backoff(attempts)
        if next_at > delivery.expires_at:
            return await self._finish(delivery, attempt, now, FAILED, {"finished_at": now})
        return await self._finish(delivery, attempt, now, PENDING, {"next_attempt_at": next_at})

    async def _finish(
        self, delivery: Delivery, attempt: Attempt, now: datetime, status: str, values: dict[str, Any]
    ) -> bool:
        """Record the attempt and the delivery's new state, if `delivery`'s lease still holds it."""
        row = DeliveryRow
        held = and_(row.id == delivery.id, row.lease_owner == delivery.lease_owner, row.status == PENDING)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(row)
                .where(held)
                .values(
                    status=status,
                    attempts=row.attempts + 1,
                    lease_owner=None,
                    lease_until=None,
                    last_status=attempt.status_code,
                    last_error=attempt.error,
                    **values,
                )
            )
            if result.rowcount != 1:
                return False
            await conn.execute(
                plain_insert(DeliveryAttemptRow).values(
                    delivery_id=delivery.id,
                    attempted_at=now,
                    outcome=status,
                    status_code=attempt.status_code,
                    latency_ms=attempt.latency_ms,
                    error=attempt.error,
                )
            )
        return True

    # ------------------------------------------------------------------------------------ reading

    async def notice(self, notification_id: int) -> Notice:
        """The outbox notice an email delivery tells of."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(NotificationRow).where(NotificationRow.id == notification_id))
            ).one()
        prefix = row.dedupe_key.split(":", 1)[0]
        of_activation = row.complaint_id is None and prefix.startswith(ACTIVATION_PREFIX)
        return Notice(
            recipient=row.recipient,
            template=row.template,
            payload=json.loads(row.payload_json),
            complaint_id=row.complaint_id,
            activation_id=prefix if of_activation else None,
        )

    async def webhook_event(self, event_row_id: int) -> WebhookEvent:
        """The event a webhook delivery carries."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(WebhookEventRow).where(WebhookEventRow.id == event_row_id))
            ).one()
        return WebhookEvent(
            id=row.event_id,
            type=row.type,
            occurred_at=row.occurred_at,
            data=json.loads(row.data_json),
            sequence_key=row.sequence_key,
        )

    async def counts(self) -> dict[str, int]:
        """Deliveries by status."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status))
        return {status: count for status, count in rows.all()}

    async def oldest_pending(self) -> datetime | None:
        """When the oldest undelivered message was created: the dispatcher's lag."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(func.min(DeliveryRow.created_at)).where(DeliveryRow.status == PENDING)
            )
        oldest: datetime | None = found.scalar_one()
        return oldest


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        channel=row.channel,
        destination=row.destination,
        message_id=row.message_id,
        source_id=row.source_id,
        sequence_key=row.sequence_key,
        attempts=row.attempts,
        expires_at=row.expires_at,
        lease_owner=row.lease_owner,
    )
