"""One remedy per order (R12, R16): a refund or a replacement, once, whichever complaint asks.

The ledger's tests run on SQLite and PostgreSQL alike (`any_ledger`); the workflow tests on the
time-skipping server with the real desk and worker.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Coroutine
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ledger.migrate import upgrade
from ledger.records import IssuedRefund, IssuedReplacement
from ledger.repository import Ledger, OrderAlreadyRefunded, OrderAlreadyRemedied
from policy import intake
from policy.complaint import FileDefectComplaint, Review
from policy.ids import complaint_workflow_id, new_complaint_id
from policy.models import ComplaintKind, ComplaintStatus, Order, RemedyChoice, ReviewDecision
from policy.refusals import PolicyRefusal
from starter.desk import ComplaintDesk
from starter.desk.failures import failure_of
from tests.conftest import _postgres_database, in_ledger
from tests.factories import BACKEND, DESCRIPTION, POLICY, SUPPORT, customer, number_order, software_order
from tests.test_ledger import BASE, refund_issue, replacement_issue, schema_diff
from workflows.defect_complaint import DefectComplaintWorkflow

S = ComplaintStatus
APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="reproduced on staging")
LONG_CLAIM_WINDOW = POLICY.model_copy(update={"claim_window": timedelta(days=365 * 100)})
"""Waiting for an outcome lets the test server's clock run years ahead: R3 is kept out of these tests."""
REMEDY_TABLES = ["remedies", "refunds", "balance_entries", "replacements"]

# --------------------------------------------------------------------------------------- migration


async def _old_ledger(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    """A ledger at revision 0002, as the release before left it."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    else:
        url = await _postgres_database(request.getfixturevalue("postgres_admin_url"))
    ledger = Ledger.connect(url)
    await upgrade(ledger.engine, "0002")
    return ledger


async def _insert_0002_rows(ledger: Ledger, rows: list[tuple[str, str, str, str, int]]) -> None:
    """Refunds and replacements written as revision 0002 allowed: (kind, id, source, order, minutes)."""
    async with ledger.engine.begin() as conn:
        for kind, remedy_id, source_id, order_id, minutes in rows:
            at = BASE + timedelta(minutes=minutes)
            values = {"id": remedy_id, "source": source_id, "order": order_id, "at": at}
            if kind == "refund":
                sql = (
                    "INSERT INTO refunds (refund_id, source_kind, source_id, customer_id, order_id, amount,"
                    " currency, issued_at, actor) VALUES (:id, 'complaint', :source, 'cust', :order, 12,"
                    " 'EUR', :at, 'system:refund-desk')"
                )
            else:
                sql = (
                    "INSERT INTO replacements (replacement_id, complaint_id, customer_id, order_id, sku,"
                    " name, value, currency, issued_at, actor) VALUES (:id, :source, 'cust', :order,"
                    " 'plugin-seo-pro', 'SEO Pro plugin', 12, 'EUR', :at, 'system:refund-desk')"
                )
            await conn.execute(text(sql), values)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrade_to_0003_keeps_each_orders_earliest_remedy_and_every_row(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A ledger written before 0003 may hold a refund and a replacement for one order, or two
    replacements: the upgrade succeeds, keeps every row, and makes each order's first remedy its one."""
    ledger = await _old_ledger(backend, request, tmp_path)
    try:
        await _insert_0002_rows(
            ledger,
            [
                ("replacement", "rp_first", "c-a1", "ord-a", 1),  # replaced, then refunded
                ("refund", "rf_a", "c-a2", "ord-a", 2),
                ("refund", "rf_b", "c-b1", "ord-b", 5),  # refunded, then replaced
                ("replacement", "rp_b", "c-b2", "ord-b", 9),
                ("replacement", "rp_c2", "c-c2", "ord-c", 4),  # replaced twice
                ("replacement", "rp_c1", "c-c1", "ord-c", 3),
                ("refund", "rf_d", "c-d", "ord-d", 0),  # refunded and replaced at the same instant
                ("replacement", "rp_d", "c-d2", "ord-d", 0),
                ("replacement", "rp_e", "c-e", "ord-e", 7),  # made good once
            ],
        )

        await upgrade(ledger.engine)

        assert await schema_diff(ledger) == []
        async with ledger.engine.connect() as conn:
            remedies = (
                await conn.execute(
                    text("SELECT order_id, kind, source_id, remedy_id FROM remedies ORDER BY order_id")
                )
            ).all()
        assert [tuple(r) for r in remedies] == [
            ("ord-a", "replacement", "c-a1", "rp_first"),
            ("ord-b", "refund", "c-b1", "rf_b"),
            ("ord-c", "replacement", "c-c1", "rp_c1"),
            ("ord-d", "refund", "c-d", "rf_d"),
            ("ord-e", "replacement", "c-e", "rp_e"),
        ]
        assert await ledger.table_counts(["refunds", "replacements"]) == {"refunds": 3, "replacements": 6}
    finally:
        await ledger.close()


# ------------------------------------------------------------------------------------------- ledger


async def test_a_replaced_order_is_neither_refunded_nor_replaced_again(any_ledger: Ledger) -> None:
    order = software_order()
    replaced = await any_ledger.issue_replacement(replacement_issue(order, "c-1"))
    before = await any_ledger.table_counts(REMEDY_TABLES)

    with pytest.raises(OrderAlreadyRemedied) as by_refund:
        await any_ledger.issue_refund(refund_issue(order, "c-2", amount="50.00"))
    with pytest.raises(OrderAlreadyRemedied) as by_replacement:
        await any_ledger.issue_replacement(replacement_issue(order, "c-3"))

    for caught in (by_refund, by_replacement):
        assert caught.value.remedy.kind == "replacement"
        assert caught.value.remedy.source_id == "c-1"
        assert caught.value.remedy.remedy_id == replaced.replacement_id
    assert await any_ledger.table_counts(REMEDY_TABLES) == before
    assert before == {"remedies": 1, "refunds": 0, "balance_entries": 0, "replacements": 1}
    assert (await any_ledger.balance(order.customer_id)).entries == []


async def test_a_refunded_order_is_not_replaced(any_ledger: Ledger) -> None:
    order = software_order()
    refund = await any_ledger.issue_refund(refund_issue(order, "c-1", amount="50.00"))
    before = await any_ledger.table_counts(REMEDY_TABLES)

    with pytest.raises(OrderAlreadyRemedied) as caught:
        await any_ledger.issue_replacement(replacement_issue(order, "c-2"))

    assert caught.value.remedy.kind == "refund"
    assert caught.value.remedy.remedy_id == refund.refund_id
    assert await any_ledger.table_counts(REMEDY_TABLES) == before
    assert await any_ledger.replacements_for("c-2") == []


async def test_a_refunded_order_refunded_again_is_still_already_refunded(any_ledger: Ledger) -> None:
    """Refund against refund keeps its own refusal, carrying the refund that won."""
    order = software_order()
    first = await any_ledger.issue_refund(refund_issue(order, "act-1", source_kind="activation"))

    with pytest.raises(OrderAlreadyRefunded) as caught:
        await any_ledger.issue_refund(refund_issue(order, "claim-1"))

    assert caught.value.refund == first.model_copy(update={"created": False})


async def test_the_remedys_own_source_retried_gets_it_back_unchanged(any_ledger: Ledger) -> None:
    replaced_order, refunded_order = software_order(), software_order()
    replacement = await any_ledger.issue_replacement(replacement_issue(replaced_order, "c-r"))
    refund = await any_ledger.issue_refund(refund_issue(refunded_order, "c-f"))

    again_replacement = await any_ledger.issue_replacement(replacement_issue(replaced_order, "c-r", sku="x"))
    again_refund = await any_ledger.issue_refund(refund_issue(refunded_order, "c-f", amount="99.00"))

    assert again_replacement == replacement.model_copy(update={"created": False})
    assert again_refund == refund.model_copy(update={"created": False})
    assert await any_ledger.table_counts(REMEDY_TABLES) == {
        "remedies": 2,
        "refunds": 1,
        "balance_entries": 1,
        "replacements": 1,
    }


async def test_remedy_of_order_says_how_the_order_was_made_good(any_ledger: Ledger) -> None:
    replaced_order, refunded_order, untouched = software_order(), software_order(), software_order()
    replacement = await any_ledger.issue_replacement(replacement_issue(replaced_order, "c-r"))
    refund = await any_ledger.issue_refund(refund_issue(refunded_order, "act-f", source_kind="activation"))

    replaced = await any_ledger.remedy_of_order(replaced_order.order_id)
    refunded = await any_ledger.remedy_of_order(refunded_order.order_id)

    assert replaced is not None and refunded is not None
    assert (replaced.kind, replaced.source_kind, replaced.source_id) == ("replacement", "complaint", "c-r")
    assert replaced.remedy_id == replacement.replacement_id and replaced.issued_at == BASE
    assert (refunded.kind, refunded.source_kind, refunded.source_id) == ("refund", "activation", "act-f")
    assert refunded.remedy_id == refund.refund_id
    assert await any_ledger.remedy_of_order(untouched.order_id) is None


async def test_racing_refunds_and_replacements_on_one_order_end_with_exactly_one(any_ledger: Ledger) -> None:
    """Refunds and replacements from several complaints, each sent several times at once, for each of a
    few orders: the unique key lets exactly one remedy in per order; every other call returns it (its own
    source) or is refused, and writes nothing."""
    orders = [software_order(customer_id="cust-race") for _ in range(4)]
    calls: list[Coroutine[Any, Any, IssuedRefund | IssuedReplacement]] = []
    for round_ in range(3):
        for i, order in enumerate(orders):
            for n in range(3):
                refund = any_ledger.issue_refund(
                    refund_issue(order, f"{order.order_id}.refund-{n}", amount="50.00")
                )
                replacement = any_ledger.issue_replacement(
                    replacement_issue(order, f"{order.order_id}.replace-{n}")
                )
                # Each kind goes first for half the orders, so either may win.
                calls += [refund, replacement] if (i + round_) % 2 else [replacement, refund]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    unexpected = [o for o in outcomes if isinstance(o, BaseException) and not _refusal(o)]
    assert unexpected == []
    issued = [o for o in outcomes if isinstance(o, IssuedRefund | IssuedReplacement)]
    assert sum(o.created for o in issued) == len(orders)
    remedies = [await any_ledger.remedy_of_order(o.order_id) for o in orders]
    assert {_remedy_id(o) for o in issued} == {r.remedy_id for r in remedies if r is not None}, (
        "whatever was not refused is its order's one remedy"
    )
    counts = await any_ledger.table_counts(REMEDY_TABLES)
    assert counts["remedies"] == len(orders)
    assert counts["refunds"] + counts["replacements"] == len(orders)
    assert counts["balance_entries"] == counts["refunds"]
    balance = await any_ledger.balance("cust-race")
    assert balance.totals in ({}, {"EUR": Decimal("50.00") * counts["refunds"]})


def _refusal(error: BaseException) -> bool:
    return isinstance(error, OrderAlreadyRefunded | OrderAlreadyRemedied)


def _remedy_id(issued: IssuedRefund | IssuedReplacement) -> str:
    return issued.refund_id if isinstance(issued, IssuedRefund) else issued.replacement_id


# -------------------------------------------------------------------------------------- file modes


async def test_a_sqlite_ledger_and_its_wal_and_shm_are_created_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "data" / "ledger.db"
    previous = os.umask(0o022)  # a common umask: files it creates are world-readable unless asked
    try:
        ledger = Ledger.connect(f"sqlite+aiosqlite:///{database}")
        await upgrade(ledger.engine)
        await ledger.record_order(software_order())
        try:
            files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
            assert all(f.exists() for f in files), "WAL mode: the -wal and -shm exist while it is open"
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        finally:
            await ledger.close()
    finally:
        os.umask(previous)


async def test_a_world_readable_sqlite_ledger_is_made_owner_only_when_opened(tmp_path: Path) -> None:
    database = tmp_path / "ledger.db"
    ledger = Ledger.connect(f"sqlite+aiosqlite:///{database}")
    await upgrade(ledger.engine)
    await ledger.close()
    database.chmod(0o644)

    reopened = Ledger.connect(f"sqlite+aiosqlite:///{database}")
    try:
        assert _mode(database) == 0o600
        await reopened.ping()
    finally:
        await reopened.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------------------- workflows


async def _made_good(desk: ComplaintDesk, order: Order, choice: RemedyChoice) -> str:
    """A defect complaint on `order` taken through approval to the customer's remedy; its id."""
    filed = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), LONG_CLAIM_WINDOW)
    await desk.review(filed.complaint_id, APPROVE)
    await desk.choose_remedy(filed.complaint_id, customer(order), choice)
    final = await desk.outcome(filed.complaint_id)
    assert final.status is (S.REPLACED if choice is RemedyChoice.REPLACEMENT else S.REFUNDED)
    return filed.complaint_id


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        (RemedyChoice.REPLACEMENT, RemedyChoice.REFUND, "already_remedied"),
        (RemedyChoice.REPLACEMENT, RemedyChoice.REPLACEMENT, "already_remedied"),
        (RemedyChoice.REFUND, RemedyChoice.REPLACEMENT, "already_remedied"),
        (RemedyChoice.REFUND, RemedyChoice.REFUND, "already_refunded"),
    ],
)
async def test_a_workflow_started_past_intake_ends_rejected_at_its_remedy_without_a_second_one(
    desk: ComplaintDesk, ledger: Ledger, first: RemedyChoice, second: RemedyChoice, reason: str
) -> None:
    """A client that starts the workflow itself skips the desk's intake: the ledger refuses its remedy,
    and the complaint ends rejected with the reason, neither crashing nor retrying."""
    order = software_order(price="49.90")
    first_id = await _made_good(desk, order, first)
    made_good = await ledger.table_counts(REMEDY_TABLES)
    second_id = new_complaint_id(order.order_id, ComplaintKind.MAJOR_DEFECT)
    filing = FileDefectComplaint(
        complaint_id=second_id,
        order=order,
        description=DESCRIPTION,
        filed_by=customer(order),
        policy=LONG_CLAIM_WINDOW,
    )
    await desk.client.start_workflow(
        DefectComplaintWorkflow.run,
        filing,
        id=complaint_workflow_id(order.order_id, ComplaintKind.MAJOR_DEFECT),
        task_queue=desk.task_queue,
    )
    await in_ledger(ledger, second_id)
    await desk.review(second_id, APPROVE)
    await desk.choose_remedy(second_id, customer(order), second)

    final = await desk.outcome(second_id)

    assert final.status is S.REJECTED
    assert final.resolution is not None
    assert (final.resolution.reason_code, final.resolution.refund, final.resolution.replacement) == (
        reason,
        None,
        None,
    )
    assert await ledger.table_counts(REMEDY_TABLES) == made_good, "no second refund or replacement"
    remedy = await ledger.remedy_of_order(order.order_id)
    assert remedy is not None and remedy.source_id == first_id
    assert await ledger.refunds_for("complaint", second_id) == []
    assert await ledger.replacements_for(second_id) == []


# ------------------------------------------------------------------------------------------- intake


def test_already_remedied_is_a_422() -> None:
    failure = failure_of(intake.already_remedied(software_order()))
    assert failure is not None and (failure.code, failure.status) == ("already_remedied", 422)


async def test_a_complaint_on_an_order_already_replaced_is_refused_at_intake(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = software_order(price="49.90")
    await _made_good(desk, order, RemedyChoice.REPLACEMENT)
    before = await ledger.table_counts()

    with pytest.raises(PolicyRefusal) as caught:
        await desk.file_defect_complaint(order, DESCRIPTION, customer(order), LONG_CLAIM_WINDOW)

    assert caught.value.code == "already_remedied"
    assert await ledger.table_counts() == before, "a refusal writes nothing"
    assert (await ledger.balance(order.customer_id)).entries == []


async def test_a_complaint_on_an_order_already_refunded_is_still_already_refunded_at_intake(
    desk: ComplaintDesk,
) -> None:
    order = software_order()
    await _made_good(desk, order, RemedyChoice.REFUND)

    with pytest.raises(PolicyRefusal) as caught:
        await desk.file_defect_complaint(order, DESCRIPTION, customer(order), LONG_CLAIM_WINDOW)

    assert caught.value.code == "already_refunded"


async def test_an_activation_for_an_order_already_replaced_is_refused(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """Kinds fit products, so no complaint replaces a number; the ledger alone can say it was, and the
    activation's start reads it there."""
    order, _ = await ledger.record_order(number_order(placed_at=await desk.now()))
    await ledger.issue_replacement(replacement_issue(order, "c-elsewhere"))

    with pytest.raises(PolicyRefusal) as caught:
        await desk.start_activation(order.order_id, "+447700900123", "whatsapp", BACKEND)

    assert caught.value.code == "already_remedied"
    assert await ledger.activation_of_order(order.order_id) is None
