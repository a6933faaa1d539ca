"""The ledger repository on SQLite and PostgreSQL alike: schema, exact money and times, exactly-once (R16).

Every test runs twice through `any_ledger`: once on a SQLite file, once on a throwaway PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Connection, MetaData, String, inspect, select, table, text
from sqlalchemy.exc import StatementError

import ledger.idempotency  # noqa: F401  its table is on Base.metadata, which schema_diff compares
from ledger.migrate import upgrade
from ledger.records import ComplaintTransition, Notification, RefundIssue, ReplacementIssue
from ledger.repository import Ledger, OrderAlreadyRefunded, OrderConflict
from ledger.schema import Base
from ledger.vault import VaultError, VaultKeyring
from policy.complaint import ComplaintState, SealedSecret
from policy.models import (
    ComplaintEvent,
    ComplaintKind,
    ComplaintStatus,
    Money,
    Order,
    Product,
    ProductKind,
    ReplacementOffer,
)
from tests.conftest import _postgres_database
from tests.factories import DESCRIPTION, POLICY, SECRET, credentials, customer, software_order

S = ComplaintStatus
BASE = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
LEDGER_TABLES = sorted(Base.metadata.tables)


# ------------------------------------------------------------------------------------------- builders


def complaint(
    order: Order,
    *,
    status: ComplaintStatus = S.UNDER_REVIEW,
    kind: ComplaintKind = ComplaintKind.MAJOR_DEFECT,
    created_at: datetime = BASE,
    complaint_id: str | None = None,
) -> ComplaintState:
    return ComplaintState(
        complaint_id=complaint_id or f"{order.order_id}.{kind.value}.{uuid.uuid4().hex[:8]}",
        kind=kind,
        order=order,
        description=DESCRIPTION,
        filed_by=customer(order),
        policy=POLICY,
        status=status,
        created_at=created_at,
        deadline=created_at + POLICY.rectify_window,
    )


def event(seq: int, type_: str = "filed", *, at: datetime | None = None, **detail: Any) -> ComplaintEvent:
    return ComplaintEvent(
        seq=seq, at=at or BASE + timedelta(minutes=seq), actor="support:alice", type=type_, detail=detail
    )


def step(state: ComplaintState, seq: int, type_: str = "filed", **detail: Any) -> ComplaintTransition:
    return ComplaintTransition(state=state, event=event(seq, type_, **detail))


async def file(ledger: Ledger, state: ComplaintState) -> ComplaintState:
    """Project a complaint as just filed (seq 1)."""
    assert await ledger.record_transition(f"complaint.{state.complaint_id}", "run-1", step(state, 1))
    return state


def refund_issue(order: Order, source_id: str, amount: str | Money = "19.99", **changes: Any) -> RefundIssue:
    money = amount if isinstance(amount, Money) else Money(amount=Decimal(amount), currency="EUR")
    values: dict[str, Any] = {
        "source_kind": "complaint",
        "source_id": source_id,
        "customer_id": order.customer_id,
        "order_id": order.order_id,
        "amount": money,
        "actor": "system:refund-desk",
        "at": BASE,
    }
    values.update(changes)
    return RefundIssue(**values)


def replacement_issue(order: Order, complaint_id: str, sku: str = "plugin-seo-pro") -> ReplacementIssue:
    return ReplacementIssue(
        complaint_id=complaint_id,
        customer_id=order.customer_id,
        order_id=order.order_id,
        offer=ReplacementOffer(sku=sku, name="SEO Pro plugin", value=order.price),
        actor="customer:" + order.customer_id,
        at=BASE,
    )


async def schema_diff(ledger: Ledger, metadata: MetaData = Base.metadata) -> list[Any]:
    """Alembic's autogenerate comparison of the live database with `metadata`: [] means identical."""

    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff: list[Any] = compare_metadata(context, metadata)
        return diff

    async with ledger.engine.connect() as conn:
        return await conn.run_sync(compare)


async def all_text(ledger: Ledger) -> str:
    """Every value of every row of every table in the database (reflected, not just the ledger's own)."""
    async with ledger.engine.connect() as conn:
        names: list[str] = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        chunks: list[str] = []
        for name in names:
            for row in await conn.execute(select(text("*")).select_from(table(name))):
                chunks.extend(str(value) for value in row)
    assert "vault_secrets" in names
    return "\n".join(chunks)


# ------------------------------------------------------------------------------------------- schema


async def test_migration_creates_exactly_the_declared_schema(any_ledger: Ledger) -> None:
    assert await schema_diff(any_ledger) == []
    async with any_ledger.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    assert set(names) == {*LEDGER_TABLES, "alembic_version"}


async def test_schema_comparison_would_notice_a_difference(any_ledger: Ledger) -> None:
    """The check above is not vacuous: a declared column the migration lacks shows up as a difference."""
    changed = MetaData()
    for declared in Base.metadata.tables.values():
        declared.to_metadata(changed)
    changed.tables["orders"].append_column(Column("coupon", String(20), nullable=True))
    diff = await schema_diff(any_ledger, changed)
    assert [(d[0], d[2], d[3].name) for d in diff] == [("add_column", "orders", "coupon")]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrading_a_ledger_of_the_previous_release_keeps_its_money(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """0001 -> 0002 on a ledger that holds an order, a complaint's refund and its balance entry: the new
    tables and the one-refund-per-order key arrive, and nothing already there changes."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    else:
        url = await _postgres_database(request.getfixturevalue("postgres_admin_url"))
    ledger = Ledger.connect(url)
    try:
        await upgrade(ledger.engine, "0001")
        order, _ = await ledger.record_order(software_order(price="12.00"))
        async with ledger.engine.begin() as conn:  # the 0001 schema: written as the release before wrote it
            await conn.execute(
                text(
                    "INSERT INTO refunds (refund_id, source_kind, source_id, customer_id, order_id, amount,"
                    " currency, issued_at, actor) VALUES ('rf_old', 'complaint', 'c-old', :customer, :order,"
                    " 12, 'EUR', :at, 'system:refund-desk')"
                ),
                {"customer": order.customer_id, "order": order.order_id, "at": BASE},
            )
            await conn.execute(
                text(
                    "INSERT INTO balance_entries (customer_id, currency, amount, kind, refund_id, at, actor)"
                    " VALUES (:customer, 'EUR', 12, 'refund', 'rf_old', :at, 'system:refund-desk')"
                ),
                {"customer": order.customer_id, "at": BASE},
            )

        await upgrade(ledger.engine)

        assert await schema_diff(ledger) == []
        assert (await ledger.balance(order.customer_id)).totals == {"EUR": Decimal("12.00")}
        refund = await ledger.refund_of_order(order.order_id)
        assert refund is not None and refund.refund_id == "rf_old"
        with pytest.raises(OrderAlreadyRefunded):
            await ledger.issue_refund(refund_issue(order, "c-new", amount="12.00"))
    finally:
        await ledger.close()


async def test_upgrading_twice_is_a_no_op(any_ledger: Ledger) -> None:
    order, _ = await any_ledger.record_order(software_order())
    before = await any_ledger.table_counts()

    await upgrade(any_ledger.engine)

    assert await any_ledger.table_counts() == before
    assert await any_ledger.get_order(order.order_id) == order
    assert await schema_diff(any_ledger) == []
    async with any_ledger.engine.connect() as conn:
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    assert versions == ["0008"]


# ------------------------------------------------------------------------------------------- orders


async def test_record_order_is_idempotent(any_ledger: Ledger) -> None:
    order = software_order()
    stored, created = await any_ledger.record_order(order)
    assert created is True
    assert stored == order

    again, created_again = await any_ledger.record_order(order)
    assert created_again is False
    assert again == order
    assert (await any_ledger.table_counts(["orders"]))["orders"] == 1


async def test_same_order_id_with_another_body_conflicts_and_changes_nothing(any_ledger: Ledger) -> None:
    order = software_order(price="50.00")
    await any_ledger.record_order(order)
    before = await any_ledger.table_counts()

    for changed in (
        order.model_copy(update={"price": Money(amount=Decimal("49.99"), currency="EUR")}),
        order.model_copy(update={"price": Money(amount=Decimal("50.00"), currency="USD")}),
        order.model_copy(update={"customer_id": "someone-else"}),
        order.model_copy(update={"placed_at": order.placed_at + timedelta(seconds=1)}),
        order.model_copy(
            update={"product": Product(sku="vn-telegram", kind=ProductKind.VIRTUAL_NUMBER, name="Number")}
        ),
    ):
        with pytest.raises(OrderConflict):
            await any_ledger.record_order(changed)

    assert await any_ledger.table_counts() == before
    assert await any_ledger.get_order(order.order_id) == order


async def test_money_is_exact(any_ledger: Ledger) -> None:
    order = software_order(price="12.3456")
    stored, _ = await any_ledger.record_order(order)
    fetched = await any_ledger.get_order(order.order_id)
    assert fetched is not None
    for amount in (stored.price.amount, fetched.price.amount):
        assert isinstance(amount, Decimal)
        assert amount == Decimal("12.3456")
        assert str(amount) == "12.3456"

    big = software_order(price="99999999999999.9999")
    await any_ledger.record_order(big)
    fetched_big = await any_ledger.get_order(big.order_id)
    assert fetched_big is not None
    assert fetched_big.price.amount == Decimal("99999999999999.9999")


async def test_more_than_four_decimal_places_is_refused(any_ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        Money(amount=Decimal("12.34567"), currency="EUR")

    # Even a Money that skipped validation never reaches the table rounded.
    sneaky = Money.model_construct(amount=Decimal("12.34567"), currency="EUR")
    order = software_order().model_copy(update={"price": sneaky})
    before = await any_ledger.table_counts()
    with pytest.raises(StatementError, match="more than 4 decimal places"):
        await any_ledger.record_order(order)
    assert await any_ledger.table_counts() == before
    assert await any_ledger.get_order(order.order_id) is None


async def test_datetimes_come_back_aware_utc_and_equal(any_ledger: Ledger) -> None:
    placed_at = datetime(2026, 1, 31, 23, 45, 1, 654321, tzinfo=timezone(timedelta(hours=2)))
    order = software_order().model_copy(update={"placed_at": placed_at})

    stored, created = await any_ledger.record_order(order)
    fetched = await any_ledger.get_order(order.order_id)
    assert created
    assert fetched is not None
    for got in (stored.placed_at, fetched.placed_at):
        assert got.tzinfo is not None
        assert got.utcoffset() == timedelta(0)
        assert got == placed_at
        assert got == datetime(2026, 1, 31, 21, 45, 1, 654321, tzinfo=UTC)

    # The same instant written in another offset is the same order, not a conflict.
    _, created_again = await any_ledger.record_order(
        order.model_copy(update={"placed_at": placed_at.astimezone(UTC)})
    )
    assert created_again is False


async def test_naive_datetime_is_refused_and_writes_nothing(any_ledger: Ledger) -> None:
    state = complaint(software_order())
    naive = ComplaintTransition(state=state, event=event(1, at=datetime(2026, 1, 1, 12, 0)))
    before = await any_ledger.table_counts()
    with pytest.raises(StatementError, match="naive datetime"):
        await any_ledger.record_transition("wf", "run", naive)
    assert await any_ledger.table_counts() == before


# ----------------------------------------------------------------------------------- refunds (R16)


async def test_r16_repeated_refund_returns_the_first_and_credits_once(any_ledger: Ledger) -> None:
    order = software_order(price="19.99")
    issue = refund_issue(order, "c-1")

    first = await any_ledger.issue_refund(issue)
    second = await any_ledger.issue_refund(issue)
    # A retry with other numbers still finds the refund already issued, unchanged.
    third = await any_ledger.issue_refund(
        refund_issue(order, "c-1", amount="500.00", at=BASE + timedelta(days=1), actor="support:mallory")
    )

    assert first.created is True
    assert first.refund_id.startswith("rf_")
    assert (second.created, third.created) == (False, False)
    assert first.refund_id == second.refund_id == third.refund_id
    for issued in (first, second, third):
        assert issued.amount == Money(amount=Decimal("19.99"), currency="EUR")
        assert issued.issued_at == BASE
        assert issued.actor == "system:refund-desk"

    assert await any_ledger.refunds_for("complaint", "c-1") == [second]
    balance = await any_ledger.balance(order.customer_id)
    assert balance.totals == {"EUR": Decimal("19.99")}
    assert len(balance.entries) == 1
    assert balance.entries[0].refund_id == first.refund_id
    assert balance.entries[0].kind == "refund"
    assert await any_ledger.table_counts(["refunds", "balance_entries"]) == {
        "refunds": 1,
        "balance_entries": 1,
    }


async def test_r16_concurrent_duplicate_refunds_credit_once(any_ledger: Ledger) -> None:
    order = software_order()
    issue = refund_issue(order, "c-race", amount="12.3456")

    issued = await asyncio.gather(*(any_ledger.issue_refund(issue) for _ in range(20)))

    assert sum(r.created for r in issued) == 1
    assert len({r.refund_id for r in issued}) == 1
    assert await any_ledger.table_counts(["refunds", "balance_entries"]) == {
        "refunds": 1,
        "balance_entries": 1,
    }
    balance = await any_ledger.balance(order.customer_id)
    assert balance.totals == {"EUR": Decimal("12.3456")}
    assert [e.refund_id for e in balance.entries] == [issued[0].refund_id]


async def test_r16_different_sources_credit_separately(any_ledger: Ledger) -> None:
    first, second, third = (software_order(customer_id="cust-many") for _ in range(3))
    issues = [
        refund_issue(first, "c-1", amount="10.00"),
        refund_issue(second, "c-2", amount="2.50"),
        refund_issue(third, "c-1", amount="0.0001", source_kind="activation"),
    ]

    issued = await asyncio.gather(*(any_ledger.issue_refund(i) for i in issues * 5))

    assert sum(r.created for r in issued) == 3
    assert len({r.refund_id for r in issued}) == 3
    balance = await any_ledger.balance("cust-many")
    assert balance.totals == {"EUR": Decimal("12.5001")}
    assert len(balance.entries) == 3
    assert len(await any_ledger.refunds_for("complaint", "c-1")) == 1
    assert len(await any_ledger.refunds_for("activation", "c-1")) == 1
    assert await any_ledger.refunds_for("activation", "c-2") == []
    # Another customer's balance is untouched.
    assert (await any_ledger.balance("nobody")).totals == {}


async def test_r16_an_order_is_refunded_once_whichever_source_asks(any_ledger: Ledger) -> None:
    """An activation's automatic refund (R2) and a claim's (R5) for one order: the first wins, the second
    is refused by the ledger's unique key and credits nothing, even when they race."""
    order = software_order()
    by_activation = refund_issue(order, "act-1", source_kind="activation")
    by_claim = refund_issue(order, "claim-1")

    outcomes = await asyncio.gather(
        *(any_ledger.issue_refund(i) for i in [by_activation, by_claim] * 4), return_exceptions=True
    )

    issued = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, OrderAlreadyRefunded)]
    assert len(issued) + len(refused) == len(outcomes), outcomes
    assert len({r.refund_id for r in issued}) == 1
    assert sum(r.created for r in issued) == 1
    winner = issued[0]
    assert all(r.refund.refund_id == winner.refund_id for r in refused)
    balance = await any_ledger.balance(order.customer_id)
    assert [e.refund_id for e in balance.entries] == [winner.refund_id]
    assert await any_ledger.refund_of_order(order.order_id) == winner.model_copy(update={"created": False})


async def test_balance_keeps_currencies_apart(any_ledger: Ledger) -> None:
    order, other = software_order(customer_id="cust-two"), software_order(customer_id="cust-two")
    await any_ledger.issue_refund(refund_issue(order, "c-1", amount="10.00"))
    await any_ledger.issue_refund(
        refund_issue(other, "c-2", amount=Money(amount=Decimal("3.00"), currency="USD"))
    )
    assert (await any_ledger.balance(order.customer_id)).totals == {
        "EUR": Decimal("10.00"),
        "USD": Decimal(3),
    }


# ------------------------------------------------------------------------------ replacements (R16)


async def test_r16_replacement_issued_once_per_complaint(any_ledger: Ledger) -> None:
    order = software_order()
    first = await any_ledger.issue_replacement(replacement_issue(order, "c-1"))
    second = await any_ledger.issue_replacement(replacement_issue(order, "c-1", sku="another-plugin"))

    assert (first.created, second.created) == (True, False)
    assert first.replacement_id == second.replacement_id
    assert second.offer.sku == "plugin-seo-pro"
    assert second.offer.value == order.price
    assert await any_ledger.replacements_for("c-1") == [second]
    assert (await any_ledger.table_counts(["replacements"]))["replacements"] == 1


async def test_r16_concurrent_duplicate_replacements_issue_once(any_ledger: Ledger) -> None:
    order, other_order = software_order(), software_order()
    issued = await asyncio.gather(
        *(any_ledger.issue_replacement(replacement_issue(order, "c-race")) for _ in range(20)),
        *(any_ledger.issue_replacement(replacement_issue(other_order, "c-other")) for _ in range(5)),
    )

    race, other = issued[:20], issued[20:]
    assert sum(r.created for r in race) == 1
    assert len({r.replacement_id for r in race}) == 1
    assert sum(r.created for r in other) == 1
    assert len({r.replacement_id for r in other}) == 1
    assert race[0].replacement_id != other[0].replacement_id
    assert (await any_ledger.table_counts(["replacements"]))["replacements"] == 2
    assert len(await any_ledger.replacements_for("c-race")) == 1


# ---------------------------------------------------------------------------- complaint transitions


async def test_r16_same_event_is_recorded_once(any_ledger: Ledger) -> None:
    state = complaint(software_order())
    transition = step(state, 1, note="x")

    assert await any_ledger.record_transition("wf", "run-1", transition) is True
    assert await any_ledger.record_transition("wf", "run-1", transition) is False
    # A retried activity carrying another body for the same seq does not overwrite the first.
    assert await any_ledger.record_transition("wf", "run-1", step(state, 1, "other", note="y")) is False

    events = await any_ledger.complaint_events(state.complaint_id)
    assert events == [event(1, note="x")]
    assert await any_ledger.table_counts(["complaints", "complaint_events"]) == {
        "complaints": 1,
        "complaint_events": 1,
    }


async def test_projection_only_moves_forward(any_ledger: Ledger) -> None:
    filed = complaint(software_order())
    rectifying = filed.model_copy(update={"status": S.RECTIFYING})

    assert await any_ledger.record_transition("wf", "run-2", step(rectifying, 2, "reviewed"))
    assert await any_ledger.record_transition("wf", "run-1", step(filed, 1, "filed"))

    record = await any_ledger.get_complaint(filed.complaint_id)
    assert record is not None
    assert record.state.status is S.RECTIFYING
    assert record.run_id == "run-2"
    assert [e.seq for e in record.state.events] == [1, 2]
    assert [e.type for e in record.state.events] == ["filed", "reviewed"]
    assert [c.state.status for c in await any_ledger.list_complaints()] == [S.RECTIFYING]

    # A newer seq still moves it on.
    refunded = rectifying.model_copy(update={"status": S.REFUNDED})
    assert await any_ledger.record_transition("wf", "run-2", step(refunded, 3, "refunded"))
    moved = await any_ledger.get_complaint(filed.complaint_id)
    assert moved is not None
    assert moved.state.status is S.REFUNDED


async def test_get_complaint_returns_state_and_events_in_order(any_ledger: Ledger) -> None:
    state = complaint(software_order())
    for seq in (3, 1, 4, 2):
        assert await any_ledger.record_transition("wf-id", "run-1", step(state, seq, f"e{seq}", n=seq))

    record = await any_ledger.get_complaint(state.complaint_id)
    assert record is not None
    assert record.workflow_id == "wf-id"
    assert record.run_id == "run-1"
    assert record.state.model_copy(update={"events": []}) == state
    assert record.state.events == [event(seq, f"e{seq}", n=seq) for seq in (1, 2, 3, 4)]
    assert record.state.created_at.utcoffset() == timedelta(0)
    assert await any_ledger.complaint_events(state.complaint_id) == record.state.events
    assert await any_ledger.get_complaint("no-such-complaint") is None


async def test_list_complaints_filters(any_ledger: Ledger) -> None:
    alice_order = software_order(customer_id="alice")
    bob_order = software_order(customer_id="bob")
    a1 = await file(any_ledger, complaint(alice_order, created_at=BASE))
    a2 = await file(
        any_ledger,
        complaint(alice_order, kind=ComplaintKind.INVALID_NUMBER, status=S.REJECTED, created_at=BASE),
    )
    b1 = await file(any_ledger, complaint(bob_order, status=S.RECTIFYING, created_at=BASE))

    async def ids(**filters: Any) -> set[str]:
        return {r.state.complaint_id for r in await any_ledger.list_complaints(**filters)}

    assert await ids() == {a1.complaint_id, a2.complaint_id, b1.complaint_id}
    assert await ids(customer_id="alice") == {a1.complaint_id, a2.complaint_id}
    assert await ids(customer_id="bob") == {b1.complaint_id}
    assert await ids(order_id=alice_order.order_id) == {a1.complaint_id, a2.complaint_id}
    assert await ids(status="rejected") == {a2.complaint_id}
    assert await ids(status="rectifying") == {b1.complaint_id}
    assert await ids(kind="major_defect") == {a1.complaint_id, b1.complaint_id}
    assert await ids(kind="major_defect", customer_id="alice") == {a1.complaint_id}
    assert await ids(kind="invalid_number", status="under_review") == set()
    assert await ids(customer_id="carol") == set()
    for record in await any_ledger.list_complaints():
        assert record.state.events == []


async def test_list_complaints_paginates_newest_first_without_duplicates_or_gaps(
    any_ledger: Ledger,
) -> None:
    order = software_order()
    # Ties on created_at (several complaints in the same microsecond) are broken by complaint id.
    times = [BASE + timedelta(hours=h) for h in (0, 0, 0, 1, 2, 2, 3, 4, 4, 4, 5)]
    states = [
        await file(any_ledger, complaint(order, created_at=t, complaint_id=f"c-{i:02d}"))
        for i, t in enumerate(times)
    ]
    expected = [s.complaint_id for s in sorted(states, key=lambda s: (s.created_at, s.complaint_id))][::-1]

    for limit in (1, 2, 3, 4, 11, 50):
        seen: list[str] = []
        after: tuple[datetime, str] | None = None
        pages = 0
        while True:
            page = await any_ledger.list_complaints(limit=limit, after=after)
            pages += 1
            assert len(page) <= limit
            if not page:
                break
            seen.extend(r.state.complaint_id for r in page)
            last = page[-1].state
            after = (last.created_at, last.complaint_id)
            assert pages <= len(states) + 1
        assert seen == expected, f"limit={limit}"

    # The cursor's instant may come in any offset.
    in_cet = (BASE + timedelta(hours=4)).astimezone(timezone(timedelta(hours=1)))
    page = await any_ledger.list_complaints(after=(in_cet, "c-08"), limit=3)
    assert [r.state.complaint_id for r in page] == ["c-07", "c-06", "c-05"]
    # Filters and the cursor combine.
    filtered = await any_ledger.list_complaints(order_id=order.order_id, after=(BASE, "c-02"))
    assert [r.state.complaint_id for r in filtered] == ["c-01", "c-00"]


# ------------------------------------------------------------------------------------ notifications


async def test_notifications_are_deduplicated_by_key(any_ledger: Ledger) -> None:
    first = Notification(
        dedupe_key="c-1:filed", recipient="support", template="complaint_filed", complaint_id="c-1"
    )
    assert await any_ledger.enqueue_notification(first) is True
    assert await any_ledger.enqueue_notification(first) is False
    assert (
        await any_ledger.enqueue_notification(first.model_copy(update={"payload": {"again": True}})) is False
    )
    second = Notification(
        dedupe_key="c-1:reviewed",
        recipient="customer:bob",
        template="complaint_reviewed",
        complaint_id="c-1",
        payload={"amount": Decimal("1.50"), "n": 2},
    )
    assert await any_ledger.enqueue_notification(second) is True
    other = Notification(dedupe_key="c-2:filed", recipient="support", template="complaint_filed")
    assert await any_ledger.enqueue_notification(other) is True

    outbox = await any_ledger.outbox(complaint_id="c-1")
    assert [m.dedupe_key for m in outbox] == ["c-1:filed", "c-1:reviewed"]
    assert outbox[0].payload == {}
    assert outbox[1].payload == {"amount": "1.50", "n": 2}
    assert outbox[1].recipient == "customer:bob"
    assert outbox[1].template == "complaint_reviewed"
    assert all(m.sent_at is None and m.created_at.utcoffset() == timedelta(0) for m in outbox)
    assert [m.dedupe_key for m in await any_ledger.outbox()] == ["c-1:filed", "c-1:reviewed", "c-2:filed"]
    assert await any_ledger.outbox(complaint_id="c-3") == []


# -------------------------------------------------------------------------------------------- vault


async def test_store_secret_is_idempotent_per_request(any_ledger: Ledger, keyring: VaultKeyring) -> None:
    sealed = keyring.seal(credentials(), context="c-1")
    ref = await any_ledger.store_secret("c-1", 1, sealed)
    assert ref.startswith("vault_")
    assert await any_ledger.store_secret("c-1", 1, sealed) == ref
    assert await any_ledger.store_secret("c-1", 1, keyring.seal(credentials(), context="c-1")) == ref

    second_request = await any_ledger.store_secret("c-1", 2, keyring.seal(credentials(), context="c-1"))
    other_complaint = await any_ledger.store_secret("c-2", 1, keyring.seal(credentials(), context="c-2"))
    assert len({ref, second_request, other_complaint}) == 3
    assert (await any_ledger.table_counts(["vault_secrets"]))["vault_secrets"] == 3

    found = await any_ledger.sealed_secret(ref)
    assert found == ("c-1", sealed)
    assert keyring.open(found[1], context="c-1") == credentials()
    assert keyring.open(found[1], context="c-1").secret.get_secret_value() == SECRET
    assert await any_ledger.sealed_secret("vault_nothing") is None


async def test_database_never_holds_the_secret_in_clear(any_ledger: Ledger, keyring: VaultKeyring) -> None:
    sealed = keyring.seal(credentials(), context="c-1")
    ref = await any_ledger.store_secret("c-1", 1, sealed)
    state = complaint(software_order())
    await any_ledger.record_transition("wf", "run", step(state, 1, "access_granted", credentials_ref=ref))

    dump = await all_text(any_ledger)
    assert ref in dump and sealed.ciphertext in dump, "the scan does see the vault's rows"
    for form in (SECRET, base64.b64encode(SECRET.encode()).decode(), SECRET.encode().hex()):
        assert form not in dump


def test_sealed_credentials_open_only_for_their_complaint(keyring: VaultKeyring) -> None:
    sealed = keyring.seal(credentials(), context="c-1")
    assert SECRET not in sealed.model_dump_json()
    assert keyring.open(sealed, context="c-1") == credentials()
    with pytest.raises(VaultError):
        keyring.open(sealed, context="c-2")
    with pytest.raises(VaultError):
        VaultKeyring.generate("test").open(sealed, context="c-1")
    with pytest.raises(VaultError):
        keyring.open(sealed.model_copy(update={"key_id": "unknown"}), context="c-1")


def test_tampered_ciphertext_does_not_open(keyring: VaultKeyring) -> None:
    sealed = keyring.seal(credentials(), context="c-1")
    raw = bytearray(base64.urlsafe_b64decode(sealed.ciphertext))
    for index in (0, len(raw) // 2, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        tampered = sealed.model_copy(update={"ciphertext": base64.urlsafe_b64encode(flipped).decode()})
        with pytest.raises(VaultError):
            keyring.open(tampered, context="c-1")
    truncated = sealed.model_copy(update={"ciphertext": base64.urlsafe_b64encode(raw[:-1]).decode()})
    with pytest.raises(VaultError):
        keyring.open(truncated, context="c-1")
    other_nonce = keyring.seal(credentials(), context="c-1").nonce
    with pytest.raises(VaultError):
        keyring.open(sealed.model_copy(update={"nonce": other_nonce}), context="c-1")


def test_key_rotation_opens_old_seals_and_seals_with_the_new_key() -> None:
    old = VaultKeyring.generate("old")
    sealed_before = old.seal(credentials(), context="c-1")
    new_key = base64.urlsafe_b64encode(bytes(range(32))).decode()

    rotated = VaultKeyring.parse(f"new:{new_key},{old.spec()}")

    assert rotated.current == "new"
    assert rotated.open(sealed_before, context="c-1") == credentials()
    sealed_after = rotated.seal(credentials(), context="c-1")
    assert sealed_after.key_id == "new"
    assert rotated.open(sealed_after, context="c-1") == credentials()
    with pytest.raises(VaultError):
        old.open(sealed_after, context="c-1")
    assert VaultKeyring.parse(rotated.spec()).open(sealed_after, context="c-1") == credentials()


def test_keyring_specs_are_checked() -> None:
    for bad in ("nokey", ":abc", "k1:" + base64.urlsafe_b64encode(b"short").decode(), "k1:***"):
        with pytest.raises(ValueError):
            VaultKeyring.parse(bad)


async def test_sealed_secret_round_trips_exactly(any_ledger: Ledger) -> None:
    sealed = SealedSecret(key_id="k1", nonce="bm9uY2U=", ciphertext="Y2lwaGVydGV4dA==")
    ref = await any_ledger.store_secret("c-9", 3, sealed)
    assert await any_ledger.sealed_secret(ref) == ("c-9", sealed)


def test_a_key_id_given_twice_is_refused() -> None:
    key = VaultKeyring.generate("k1").spec().split(":", 1)[1]
    with pytest.raises(ValueError, match="twice"):
        VaultKeyring.parse(f"k1:{key},k1:{key}")


async def test_foreign_keys_are_enforced_on_both_databases(any_ledger: Ledger) -> None:
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from ledger.schema import BalanceEntryRow

    orphan = insert(BalanceEntryRow).values(
        customer_id="c",
        currency="EUR",
        amount=Decimal("1"),
        kind="refund",
        refund_id="rf_missing",
        at=datetime.now(UTC),
        actor="test",
    )
    with pytest.raises(IntegrityError):
        async with any_ledger.engine.begin() as conn:
            await conn.execute(orphan)
    assert (await any_ledger.table_counts(["balance_entries"]))["balance_entries"] == 0
