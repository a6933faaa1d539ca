"""complaint queue: when each complaint is next due, and when it was escalated

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:00:00.000000

Support's console lists the open complaints most urgent first (`ledger.queue`), which needs the instant
the policy acts on each next (`policy.due.next_due`) and its escalation as columns of the projection, with
an index on (status, due_at). Both are filled from each row's `state_json`: the rule that reads them is
copied here as it stands at this revision, so that later changes to the policy's models leave this
migration as it was. Columns are added and dropped in place, never by rebuilding `complaints` (the batch
mode's copy on SQLite), under the complaint events that reference it; dropping a column in place needs
SQLite 3.35 or later.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import ledger.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
"""Rows read and updated at a time, so that a large ledger is never held in memory at once."""

complaints = sa.table(
    "complaints",
    sa.column("complaint_id", sa.String()),
    sa.column("state_json", sa.Text()),
    sa.column("due_at", ledger.types.UtcDateTime()),
    sa.column("escalated_at", ledger.types.UtcDateTime()),
)
"""The columns the backfill reads and writes; the UTC type stores times as the ledger's code does."""


def upgrade() -> None:
    op.add_column("complaints", sa.Column("due_at", ledger.types.UtcDateTime(timezone=True), nullable=True))
    op.add_column(
        "complaints", sa.Column("escalated_at", ledger.types.UtcDateTime(timezone=True), nullable=True)
    )
    op.create_index("ix_complaints_open_due", "complaints", ["status", "due_at"], unique=False)
    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_complaints_open_due", table_name="complaints")
    op.drop_column("complaints", "escalated_at")
    op.drop_column("complaints", "due_at")


def backfill(conn: sa.Connection) -> None:
    """Fill `due_at` and `escalated_at` of every complaint from its `state_json`, in keyset batches."""
    after = ""
    while True:
        rows = conn.execute(
            sa.select(complaints.c.complaint_id, complaints.c.state_json)
            .where(complaints.c.complaint_id > after)
            .order_by(complaints.c.complaint_id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        values = [_columns(complaint_id, json.loads(state_json)) for complaint_id, state_json in rows]
        filled = [v for v in values if v["due"] is not None or v["escalated"] is not None]
        if filled:
            conn.execute(
                complaints.update()
                .where(complaints.c.complaint_id == sa.bindparam("key"))
                .values(
                    due_at=sa.bindparam("due", type_=ledger.types.UtcDateTime()),
                    escalated_at=sa.bindparam("escalated", type_=ledger.types.UtcDateTime()),
                ),
                filled,
            )
        after = rows[-1][0]


def _columns(complaint_id: str, state: dict[str, Any]) -> dict[str, Any]:
    """One complaint's two columns, as the update's bind parameters: `policy.due.next_due` as it stands at
    this revision, and the escalation."""
    status = state["status"]
    access = state.get("access") or {}
    due = {
        "under_review": state.get("deadline"),
        "rectifying": state.get("deadline"),
        "escalated": state.get("deadline"),
        "awaiting_access": access.get("answer_due"),
        "awaiting_remedy_choice": state.get("remedy_choice_due"),
    }.get(status)
    return {"key": complaint_id, "due": _instant(due), "escalated": _instant(state.get("escalated_at"))}


def _instant(value: str | None) -> datetime | None:
    """An aware datetime from the ISO-8601 text pydantic writes (`Z` or an offset)."""
    return None if value is None else datetime.fromisoformat(value)
