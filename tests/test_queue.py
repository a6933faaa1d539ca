"""Support's queue: `policy.due.next_due`, the projection's `due_at` and `escalated_at`, migration 0006's
backfill, and `ledger.queue.ComplaintQueue` on SQLite and PostgreSQL alike (`any_ledger`).

Every projection is written by `Ledger.record_transition`, as the worker writes it.
"""

from __future__ import annotations

import importlib.util
import uuid
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, select, update

from ledger.migrate import MIGRATIONS, alembic_config, upgrade
from ledger.queue import ComplaintQueue, QueuePage, like_prefix
from ledger.records import ComplaintTransition
from ledger.repository import Ledger
from ledger.schema import ComplaintRow
from policy.complaint import AccessState, ComplaintState
from policy.due import next_due
from policy.models import FINAL_STATUSES, ComplaintEvent, ComplaintKind, ComplaintStatus, Order, Resolution
from tests.factories import CLAIM, DESCRIPTION, POLICY, customer, number_order, software_order
from tests.test_ledger import schema_diff

S = ComplaintStatus
K = ComplaintKind
BASE = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
DAY = timedelta(days=1)
OPEN = [status for status in ComplaintStatus if status not in FINAL_STATUSES]


# ------------------------------------------------------------------------------------------- builders


def state_of(
    status: ComplaintStatus = S.UNDER_REVIEW,
    *,
    kind: ComplaintKind = K.MAJOR_DEFECT,
    created_at: datetime = BASE,
    deadline: datetime | None = BASE + 5 * DAY,
    complaint_id: str | None = None,
    order: Order | None = None,
    **fields: Any,
) -> ComplaintState:
    """A complaint in `status`; `fields` sets the rest of the state (access, escalated_at, ...)."""
    order = order or (software_order() if kind is K.MAJOR_DEFECT else number_order())
    if status in FINAL_STATUSES:
        fields.setdefault("resolution", Resolution(outcome=status))
    return ComplaintState(
        complaint_id=complaint_id or f"{order.order_id}.{kind.value}.{uuid.uuid4().hex[:8]}",
        kind=kind,
        order=order,
        description=DESCRIPTION if kind is K.MAJOR_DEFECT else CLAIM,
        filed_by=customer(order),
        policy=POLICY,
        status=status,
        created_at=created_at,
        deadline=deadline,
        **fields,
    )


def access_until(answer_due: datetime) -> AccessState:
    return AccessState(
        number=1,
        scope="read-only SSH to the shop's staging server",
        reason="to reproduce the crash",
        requested_at=answer_due - POLICY.access_response_window,
        answer_due=answer_due,
        resume_status=S.UNDER_REVIEW,
    )


async def project(ledger: Ledger, state: ComplaintState, seq: int = 1) -> ComplaintState:
    """Record the event `seq` of the complaint with `state` as the state after it, as the worker does."""
    event = ComplaintEvent(
        seq=seq,
        at=BASE + timedelta(minutes=seq),
        actor="system:refund-desk",
        type="filed" if seq == 1 else "x",
    )
    transition = ComplaintTransition(state=state, event=event)
    assert await ledger.record_transition(f"complaint.{state.complaint_id}", "run-1", transition)
    return state


async def page(ledger: Ledger, **filters: Any) -> QueuePage:
    return await ComplaintQueue(ledger.engine).page(**filters)


async def ids(ledger: Ledger, **filters: Any) -> list[str]:
    return [record.state.complaint_id for record in (await page(ledger, **filters)).records]


async def columns(ledger: Ledger) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Each complaint's `due_at` and `escalated_at`, as the projection holds them."""
    query = select(ComplaintRow.complaint_id, ComplaintRow.due_at, ComplaintRow.escalated_at)
    async with ledger.engine.connect() as conn:
        return {r.complaint_id: (r.due_at, r.escalated_at) for r in await conn.execute(query)}


# ------------------------------------------------------------------------------------------- next_due


def test_under_review_is_due_at_its_deadline_for_a_defect_and_for_a_claim() -> None:
    assert next_due(state_of(S.UNDER_REVIEW, deadline=BASE + 5 * DAY)) == BASE + 5 * DAY
    claim = state_of(S.UNDER_REVIEW, kind=K.SMS_NOT_RECEIVED, deadline=BASE + POLICY.review_window)
    assert next_due(claim) == BASE + POLICY.review_window


def test_rectifying_is_due_at_its_deadline() -> None:
    assert next_due(state_of(S.RECTIFYING, deadline=BASE + 3 * DAY)) == BASE + 3 * DAY


def test_awaiting_access_is_due_when_the_answer_is_not_the_paused_deadline() -> None:
    state = state_of(S.AWAITING_ACCESS, deadline=BASE + 5 * DAY, access=access_until(BASE + 2 * DAY))
    assert next_due(state) == BASE + 2 * DAY


def test_escalated_stays_due_at_the_deadline_it_missed() -> None:
    state = state_of(S.ESCALATED, deadline=BASE - DAY, escalated_at=BASE - DAY)
    assert next_due(state) == BASE - DAY


def test_awaiting_the_remedy_choice_is_due_when_the_choice_is() -> None:
    state = state_of(S.AWAITING_REMEDY_CHOICE, deadline=BASE - DAY, remedy_choice_due=BASE + 2 * DAY)
    assert next_due(state) == BASE + 2 * DAY


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
def test_a_final_complaint_is_due_at_no_time(status: ComplaintStatus) -> None:
    assert next_due(state_of(status, deadline=BASE + DAY, remedy_choice_due=BASE + DAY)) is None


@pytest.mark.parametrize("status", OPEN)
def test_every_open_status_has_an_instant(status: ComplaintStatus) -> None:
    """A status added to the policy without a rule here would sort as if nothing were ever due."""
    state = state_of(status, access=access_until(BASE + DAY), remedy_choice_due=BASE + 2 * DAY)
    assert next_due(state) in {BASE + DAY, BASE + 2 * DAY, BASE + 5 * DAY}


# ---------------------------------------------------------------------------------------- projection


async def test_the_projection_follows_the_wait_the_complaint_is_in(any_ledger: Ledger) -> None:
    state = await project(any_ledger, state_of(S.UNDER_REVIEW, deadline=BASE + 5 * DAY))
    key = state.complaint_id
    assert (await columns(any_ledger))[key] == (BASE + 5 * DAY, None)

    waiting = state.model_copy(update={"status": S.AWAITING_ACCESS, "access": access_until(BASE + 2 * DAY)})
    await project(any_ledger, waiting, seq=2)
    assert (await columns(any_ledger))[key] == (BASE + 2 * DAY, None)

    escalated = state.model_copy(update={"status": S.ESCALATED, "escalated_at": BASE + 6 * DAY})
    await project(any_ledger, escalated, seq=3)
    assert (await columns(any_ledger))[key] == (BASE + 5 * DAY, BASE + 6 * DAY)

    closed = escalated.model_copy(update={"status": S.REJECTED, "resolution": Resolution(outcome=S.REJECTED)})
    await project(any_ledger, closed, seq=4)
    assert (await columns(any_ledger))[key] == (None, BASE + 6 * DAY)

    stale = ComplaintTransition(state=waiting, event=ComplaintEvent(seq=2, at=BASE, actor="a:b", type="x"))
    assert not await any_ledger.record_transition(f"complaint.{key}", "run-1", stale)
    assert (await columns(any_ledger))[key] == (None, BASE + 6 * DAY)


# --------------------------------------------------------------------------------------------- order


async def test_the_most_urgent_come_first_and_those_due_at_no_time_last(any_ledger: Ledger) -> None:
    later = BASE + DAY
    expected = [
        state_of(S.ESCALATED, deadline=BASE - 2 * DAY, escalated_at=BASE - 2 * DAY, complaint_id="c-overdue"),
        state_of(S.AWAITING_ACCESS, access=access_until(BASE + DAY), complaint_id="c-access"),
        state_of(S.UNDER_REVIEW, deadline=BASE + 3 * DAY, complaint_id="c-3-b"),  # same due: oldest first
        state_of(S.RECTIFYING, deadline=BASE + 3 * DAY, created_at=later, complaint_id="c-3-a"),
        state_of(S.UNDER_REVIEW, deadline=BASE + 3 * DAY, created_at=later, complaint_id="c-3-c"),  # then id
        state_of(
            S.AWAITING_REMEDY_CHOICE, deadline=BASE, remedy_choice_due=BASE + 4 * DAY, complaint_id="c-4"
        ),
        state_of(S.UNDER_REVIEW, deadline=None, complaint_id="c-none"),
    ]
    for state in reversed(expected):
        await project(any_ledger, state)

    listed = await page(any_ledger)

    assert [r.state.complaint_id for r in listed.records] == [s.complaint_id for s in expected]
    assert listed.total == len(expected)
    assert [r.state.events for r in listed.records] == [[]] * len(expected)
    assert listed.records[0].workflow_id == "complaint.c-overdue"


async def test_final_complaints_are_never_listed(any_ledger: Ledger) -> None:
    still_open = await project(any_ledger, state_of(S.RECTIFYING))
    for status in sorted(FINAL_STATUSES):
        await project(any_ledger, state_of(status, escalated_at=BASE))
    closed_later = await project(any_ledger, state_of(S.UNDER_REVIEW, deadline=BASE - DAY))
    closed = closed_later.model_copy(
        update={"status": S.WITHDRAWN, "resolution": Resolution(outcome=S.WITHDRAWN)}
    )
    await project(any_ledger, closed, seq=2)

    assert await ids(any_ledger) == [still_open.complaint_id]
    assert (await page(any_ledger)).total == 1
    assert (await page(any_ledger, escalated=True)).total == 0
    for status in FINAL_STATUSES:
        assert await page(any_ledger, status=status.value) == QueuePage(records=[], total=0)


# ------------------------------------------------------------------------------------------- filters


async def test_kind_and_status_filter_exactly(any_ledger: Ledger) -> None:
    defect = await project(any_ledger, state_of(S.UNDER_REVIEW, deadline=BASE + DAY))
    fixing = await project(any_ledger, state_of(S.RECTIFYING, deadline=BASE + 2 * DAY))
    sms = await project(
        any_ledger, state_of(S.UNDER_REVIEW, kind=K.SMS_NOT_RECEIVED, deadline=BASE + 3 * DAY)
    )
    invalid = await project(any_ledger, state_of(S.ESCALATED, kind=K.INVALID_NUMBER, deadline=BASE))

    assert await ids(any_ledger, kind="sms_not_received") == [sms.complaint_id]
    assert await ids(any_ledger, kind="major_defect") == [defect.complaint_id, fixing.complaint_id]
    assert await ids(any_ledger, status="under_review") == [defect.complaint_id, sms.complaint_id]
    assert await ids(any_ledger, status="escalated") == [invalid.complaint_id]
    assert await ids(any_ledger, kind="major_defect", status="under_review") == [defect.complaint_id]
    assert (await page(any_ledger, kind="major_defect", status="escalated")).total == 0
    assert (await page(any_ledger, kind="major")).total == 0  # exact, not a prefix


async def test_escalated_keeps_those_r13_escalated_even_once_decided(any_ledger: Ledger) -> None:
    waiting = await project(any_ledger, state_of(S.ESCALATED, deadline=BASE - DAY, escalated_at=BASE - DAY))
    decided = await project(
        any_ledger, state_of(S.RECTIFYING, deadline=BASE - 2 * DAY, escalated_at=BASE - 2 * DAY)
    )
    await project(any_ledger, state_of(S.UNDER_REVIEW, deadline=BASE - 3 * DAY))

    assert await ids(any_ledger, escalated=True) == [decided.complaint_id, waiting.complaint_id]
    assert (await page(any_ledger, escalated=True)).total == 2
    assert (await page(any_ledger, escalated=False)).total == 3
    assert await ids(any_ledger, escalated=True, status="escalated") == [waiting.complaint_id]


# -------------------------------------------------------------------------------------------- search


async def test_search_finds_a_complaint_by_each_of_its_ids(any_ledger: Ledger) -> None:
    mine = await project(any_ledger, state_of(deadline=BASE + DAY))
    other_order = software_order(customer_id=mine.customer_id)
    same_customer = await project(any_ledger, state_of(deadline=BASE + 2 * DAY, order=other_order))
    await project(any_ledger, state_of(deadline=BASE + 3 * DAY))

    assert await ids(any_ledger, search=mine.complaint_id) == [mine.complaint_id]
    assert await ids(any_ledger, search=f"  {mine.order.order_id}\t") == [mine.complaint_id]
    assert await ids(any_ledger, search=mine.customer_id) == [mine.complaint_id, same_customer.complaint_id]
    assert (await page(any_ledger, search=mine.customer_id)).total == 2
    assert (await page(any_ledger, search=mine.customer_id[:-1])).total == 0  # a customer id is whole
    assert (await page(any_ledger, search="   ")).total == 3
    assert (await page(any_ledger, search="")).total == 3


async def test_search_by_a_prefix_takes_wildcards_and_case_literally(any_ledger: Ledger) -> None:
    made = ["A%B-1", "AxB-2", "A_B-3", "AyB-4", "A\\B-5", "Ab-6", "B-A%B-7"]
    for n, complaint_id in enumerate(made):
        await project(any_ledger, state_of(deadline=BASE + n * DAY, complaint_id=complaint_id))

    assert await ids(any_ledger, search="A%") == ["A%B-1"]
    assert await ids(any_ledger, search="A%B") == ["A%B-1"]
    assert await ids(any_ledger, search="A_") == ["A_B-3"]
    assert await ids(any_ledger, search="A\\") == ["A\\B-5"]
    assert await ids(any_ledger, search="A") == made[:-1]
    assert await ids(any_ledger, search="a") == []
    assert await ids(any_ledger, search="AB") == []
    assert (await page(any_ledger, search="%")).total == 0


def test_a_like_prefix_escapes_its_escape_character_first() -> None:
    assert like_prefix("a\\%_b") == "a\\\\\\%\\_b%"


# -------------------------------------------------------------------------------------------- paging


async def test_pages_partition_the_queue_and_total_counts_the_matching(any_ledger: Ledger) -> None:
    made = [
        await project(any_ledger, state_of(S.UNDER_REVIEW, deadline=BASE + n * DAY, complaint_id=f"c-{n}"))
        for n in range(7)
    ]
    await project(any_ledger, state_of(S.RECTIFYING, deadline=BASE - DAY, complaint_id="c-fixing"))

    pages = [await page(any_ledger, status="under_review", limit=3, offset=offset) for offset in (0, 3, 6)]

    assert [len(p.records) for p in pages] == [3, 3, 1]
    assert {p.total for p in pages} == {7}
    listed = [r.state.complaint_id for p in pages for r in p.records]
    assert listed == [s.complaint_id for s in made]
    assert await page(any_ledger, status="under_review", offset=7) == QueuePage(records=[], total=7)
    assert await ids(any_ledger, limit=2) == ["c-fixing", "c-0"]
    assert (await page(any_ledger, limit=1)).total == 8


async def test_a_page_of_no_rows_or_before_the_first_is_refused(any_ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="limit"):
        await page(any_ledger, limit=0)
    with pytest.raises(ValueError, match="offset"):
        await page(any_ledger, offset=-1)


# ------------------------------------------------------------------------------------------ migration


async def _projected_before(ledger: Ledger) -> list[ComplaintState]:
    """Complaints in every open status, one with no deadline, and one final."""
    states = [
        state_of(S.UNDER_REVIEW, deadline=BASE + 5 * DAY),
        state_of(S.UNDER_REVIEW, kind=K.SMS_NOT_RECEIVED, deadline=BASE + POLICY.review_window),
        state_of(S.RECTIFYING, deadline=BASE + 4 * DAY, escalated_at=BASE + DAY),
        state_of(S.AWAITING_ACCESS, access=access_until(BASE + 2 * DAY)),
        state_of(S.ESCALATED, deadline=BASE - DAY, escalated_at=BASE - DAY),
        state_of(S.AWAITING_REMEDY_CHOICE, deadline=BASE, remedy_choice_due=BASE + 3 * DAY),
        state_of(S.REFUNDED, escalated_at=BASE + timedelta(microseconds=7)),
        state_of(S.UNDER_REVIEW, deadline=None),
    ]
    for state in states:
        await project(ledger, state)
    return states


def _columns_of(states: list[ComplaintState]) -> dict[str, tuple[datetime | None, datetime | None]]:
    return {s.complaint_id: (next_due(s), s.escalated_at) for s in states}


def _downgrade_to_0005(conn: Connection) -> list[str]:
    command.downgrade(alembic_config(conn), "0005")
    return [column["name"] for column in inspect(conn).get_columns("complaints")]


async def test_migration_0006_backfills_complaints_projected_before_it(any_ledger: Ledger) -> None:
    states = await _projected_before(any_ledger)
    expected = _columns_of(states)
    assert await columns(any_ledger) == expected

    async with any_ledger.engine.begin() as conn:
        names = await conn.run_sync(_downgrade_to_0005)
    assert "due_at" not in names and "escalated_at" not in names and "state_json" in names

    await upgrade(any_ledger.engine)

    assert await columns(any_ledger) == expected
    assert await schema_diff(any_ledger) == []
    listed = await page(any_ledger)
    due = {s.complaint_id: next_due(s) for s in states if not s.is_final}
    by_urgency = sorted(due, key=lambda key: (due[key] is None, due[key] or BASE, key))
    assert [r.state.complaint_id for r in listed.records] == by_urgency
    assert listed.total == len(due) == 7


def _migration_0006() -> ModuleType:
    """The migration's own module, loaded from its file as Alembic loads it."""
    (path,) = (MIGRATIONS / "versions").glob("0006_*.py")
    spec = importlib.util.spec_from_file_location("migration_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_backfill_reads_every_row_across_its_batches(any_ledger: Ledger) -> None:
    expected = _columns_of(await _projected_before(any_ledger))
    async with any_ledger.engine.begin() as conn:
        await conn.execute(update(ComplaintRow).values(due_at=None, escalated_at=None))
    assert set((await columns(any_ledger)).values()) == {(None, None)}
    migration: Any = _migration_0006()
    migration.BATCH = 3  # eight rows: three batches, the last one short

    async with any_ledger.engine.begin() as conn:
        await conn.run_sync(migration.backfill)

    assert await columns(any_ledger) == expected
