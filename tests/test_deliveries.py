"""The deliveries table as the dispatcher uses it, on SQLite and PostgreSQL: claims under a lease, in order
per destination and complaint, retried with backoff until they expire, each attempt logged; several
dispatchers at once never claim the same row."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dispatch.events import WebhookEvent
from ledger.deliveries import (
    FAILED,
    PENDING,
    SENT,
    UNDELIVERABLE,
    Attempt,
    Deliveries,
    add_webhook_event,
    backoff,
)
from ledger.repository import Ledger
from ledger.schema import DeliveryAttemptRow, DeliveryRow

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
RETRY_FOR = timedelta(days=3)


def event(n: int, complaint: str = "c-1") -> WebhookEvent:
    return WebhookEvent(
        id=f"evt_{complaint}_{n}",
        type="complaint.status_changed",
        occurred_at=NOW,
        data={"n": n},
        sequence_key=complaint,
    )


async def add(ledger: Ledger, *events: WebhookEvent, endpoints: tuple[str, ...] = ("we_a",)) -> None:
    async with ledger.engine.begin() as conn:
        for e in events:
            await add_webhook_event(conn, ledger._insert, e, endpoints, now=NOW, retry_for=RETRY_FOR)


async def statuses(ledger: Ledger) -> dict[str, str]:
    async with ledger.engine.connect() as conn:
        rows = await conn.execute(select(DeliveryRow.message_id, DeliveryRow.status))
    return {message: status for message, status in rows.all()}


async def test_an_event_is_kept_once_with_one_delivery_per_endpoint(any_ledger: Ledger) -> None:
    await add(any_ledger, event(1), endpoints=("we_a", "we_b"))
    await add(any_ledger, event(1), endpoints=("we_a", "we_b"))  # a retried activity
    claimed = await Deliveries(any_ledger.engine).claim("d1", now=NOW, lease=LEASE, limit=10)
    assert sorted(d.destination for d in claimed) == ["we_a", "we_b"]
    assert {d.message_id for d in claimed} == {"evt_c-1_1"}, "the receiver deduplicates on the event id"
    fetched = await Deliveries(any_ledger.engine).webhook_event(claimed[0].source_id)
    assert fetched.data == {"n": 1} and fetched.type == "complaint.status_changed"


async def test_a_complaints_messages_go_out_in_order_retries_included(any_ledger: Ledger) -> None:
    """The second message to an endpoint waits until the first is sent, even while the first waits for a
    retry; another complaint's messages do not wait."""
    await add(any_ledger, event(1), event(2), event(1, complaint="c-2"))
    deliveries = Deliveries(any_ledger.engine)
    first = await deliveries.claim("d1", now=NOW, lease=LEASE, limit=10)
    assert [d.message_id for d in first] == ["evt_c-1_1", "evt_c-2_1"]
    assert await deliveries.record_retry(first[0], Attempt(12, status_code=500), NOW)
    later = NOW + backoff(1) - timedelta(seconds=1)
    assert await deliveries.claim("d1", now=later, lease=LEASE, limit=10) == [], "c-1's second waits"
    again = await deliveries.claim("d1", now=NOW + backoff(1), lease=LEASE, limit=10)
    assert [d.message_id for d in again] == ["evt_c-1_1"]
    assert await deliveries.record_sent(again[0], Attempt(8, status_code=200), NOW + backoff(1))
    then = await deliveries.claim("d1", now=NOW + backoff(1), lease=LEASE, limit=10)
    assert [d.message_id for d in then] == ["evt_c-1_2"]


async def test_a_lease_holds_a_row_until_it_runs_out(any_ledger: Ledger) -> None:
    """A dispatcher that died mid-send frees its rows when the lease ends; its late record changes
    nothing once another took the row over."""
    await add(any_ledger, event(1))
    deliveries = Deliveries(any_ledger.engine)
    [held] = await deliveries.claim("dead", now=NOW, lease=LEASE, limit=10)
    assert await deliveries.claim("live", now=NOW + LEASE / 2, lease=LEASE, limit=10) == []
    [taken] = await deliveries.claim("live", now=NOW + LEASE * 2, lease=LEASE, limit=10)
    assert taken.id == held.id and taken.lease_owner == "live"
    assert not await deliveries.record_sent(held, Attempt(5, status_code=200), NOW + LEASE * 2)
    assert await deliveries.record_sent(taken, Attempt(5, status_code=200), NOW + LEASE * 2)
    assert await statuses(any_ledger) == {"evt_c-1_1": SENT}


async def test_retries_back_off_and_end_failed_at_the_expiry(any_ledger: Ledger) -> None:
    await add(any_ledger, event(1))
    deliveries = Deliveries(any_ledger.engine)
    now, waits = NOW, list[timedelta]()
    while (claimed := await deliveries.claim("d", now=now, lease=LEASE, limit=1)) and len(waits) < 200:
        await deliveries.record_retry(claimed[0], Attempt(3, error="ConnectError"), now)
        waits.append(backoff(claimed[0].attempts + 1))
        now += waits[-1]
    assert await statuses(any_ledger) == {"evt_c-1_1": FAILED}
    assert waits[:3] == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    assert max(waits) == timedelta(hours=1)
    assert NOW + RETRY_FOR - timedelta(hours=1) <= now <= NOW + RETRY_FOR + timedelta(hours=1)
    async with any_ledger.engine.connect() as conn:
        attempts = (await conn.execute(select(DeliveryAttemptRow.outcome))).scalars().all()
    assert len(attempts) == len(waits) and attempts[-1] == FAILED and set(attempts[:-1]) == {PENDING}


async def test_an_undeliverable_message_is_recorded_and_never_retried(any_ledger: Ledger) -> None:
    await add(any_ledger, event(1))
    deliveries = Deliveries(any_ledger.engine)
    [claimed] = await deliveries.claim("d", now=NOW, lease=LEASE, limit=1)
    assert await deliveries.record_undeliverable(claimed, "the endpoint was deleted", NOW)
    assert await deliveries.claim("d", now=NOW + RETRY_FOR, lease=LEASE, limit=1) == []
    assert await deliveries.counts() == {UNDELIVERABLE: 1}


async def test_dispatchers_claiming_at_once_never_share_a_row(any_ledger: Ledger) -> None:
    """Eight dispatchers claim 200 rows concurrently (PostgreSQL: SKIP LOCKED; SQLite: serial writes and
    the lease re-checked): every row is claimed exactly once."""
    await add(any_ledger, *(event(1, complaint=f"c-{n}") for n in range(200)))
    deliveries = Deliveries(any_ledger.engine)

    async def dispatcher(name: str) -> list[int]:
        mine: list[int] = []
        while batch := await deliveries.claim(name, now=NOW, lease=LEASE, limit=7):
            mine += [d.id for d in batch]
        return mine

    claims = await asyncio.gather(*(dispatcher(f"d{n}") for n in range(8)))
    every = [row for claim in claims for row in claim]
    assert len(every) == 200 and len(set(every)) == 200
    assert await deliveries.oldest_pending() is not None
