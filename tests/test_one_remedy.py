"""One remedy per order (R12, R16): a refund or a replacement, once, whichever complaint asks.

The ledger's tests run on SQLite and PostgreSQL alike (`any_ledger`); the workflow tests on the
time-skipping server with the real desk and worker.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.migrate import upgrade
from ledger.repository import Ledger
from tests.conftest import _postgres_database
from tests.test_ledger import BASE, schema_diff

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
