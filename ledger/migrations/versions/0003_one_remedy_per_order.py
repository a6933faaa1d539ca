"""one remedy per order: the remedies table

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00.000000

An order is made good once, by a refund or by a replacement (R12, R16). `remedies` holds one row per order
made good, keyed by the order, and both kinds of remedy insert theirs in the transaction that issues them,
so the unique key decides a race between a refund and a replacement.

The backfill takes every order's earliest remedy: a ledger written before this revision may hold a refund
and a replacement for one order, or two replacements. Those rows stay as they are (money and goods already
went out); the order's remedy is the first of them, by issue time, then a refund before a replacement, then
by id, so the upgrade never fails on them and is the same on SQLite and PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
INSERT INTO remedies (order_id, kind, source_kind, source_id, remedy_id, issued_at)
SELECT order_id, kind, source_kind, source_id, remedy_id, issued_at
FROM (
    SELECT
        candidates.*,
        ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY issued_at, kind, remedy_id) AS rank_in_order
    FROM (
        SELECT order_id, 'refund' AS kind, source_kind, source_id, refund_id AS remedy_id, issued_at
        FROM refunds
        UNION ALL
        SELECT order_id, 'replacement' AS kind, 'complaint' AS source_kind, complaint_id AS source_id,
            replacement_id AS remedy_id, issued_at
        FROM replacements
    ) AS candidates
) AS ranked
WHERE rank_in_order = 1
"""
"""Each order's first remedy. Issue times order alike on both databases: PostgreSQL compares timestamps,
SQLite the fixed-width UTC text SQLAlchemy writes; 'refund' sorts before 'replacement'."""


def upgrade() -> None:
    op.create_table(
        "remedies",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_kind", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("remedy_id", sa.String(length=64), nullable=False),
        sa.Column("issued_at", ledger.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("remedies")
