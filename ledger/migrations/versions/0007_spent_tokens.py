"""spent tokens: one-time console sign-in links and signed-out browser sessions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 21:30:00.000000

The browser pages sign people in with signed tokens; this table lists those refused before they expire
(a sign-in link once used, a session once signed out of). A new table, with nothing to carry over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spent_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("spent_at", ledger.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ledger.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_id"),
    )
    op.create_index(op.f("ix_spent_tokens_expires_at"), "spent_tokens", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_spent_tokens_expires_at"), table_name="spent_tokens")
    op.drop_table("spent_tokens")
