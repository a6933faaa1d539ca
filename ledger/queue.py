"""Support's queue: the open complaints and claims, most urgent first, filtered and paged.

Read from the ledger's projection (`complaints`), whose `due_at` is `policy.due.next_due` of the state the
workflow last recorded; an escalated complaint's is its missed deadline, so it sorts among the overdue.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.records import ComplaintRecord
from ledger.schema import ComplaintRow
from policy.complaint import ComplaintState
from policy.models import FINAL_STATUSES

LIKE_ESCAPE = "\\"
"""The escape character of the prefix search's LIKE pattern."""


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, and how many open complaints match its filters in all (for paging)."""

    records: list[ComplaintRecord]
    """Without their events: a page lists complaints, and each one's trail is a query of its own."""
    total: int


def like_prefix(text: str) -> str:
    """A LIKE pattern matching exactly the values that start with `text`: its `%`, `_` and the escape
    character itself are escaped, so a search for `A%B` finds `A%B...` and not `AxB...`."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text + "%"


class ComplaintQueue:
    """The queue over a ledger's engine: `await ComplaintQueue(ledger.engine).page(...)`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        escalated: bool = False,
        search: str | None = None,
        limit: int = 25,
        offset: int = 0,
    ) -> QueuePage:
        """Open complaints matching every filter given, most urgent first: the earliest `due_at`, those
        with none last, then the oldest, then by id (so that pages never overlap or skip a row).

        `kind` and `status` match exactly (a final status matches nothing); `escalated` keeps the
        complaints R13 escalated, including those support has decided since; `search` is a complaint,
        order or customer id, or the start of a complaint id. The page and its total are read in one
        connection but not one snapshot: a complaint that changes between the two reads may be counted
        and not listed, or the other way round."""
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be at least 1 and offset at least 0, not {limit} and {offset}")
        where = _filters(kind=kind, status=status, escalated=escalated, search=search)
        rows_query = (
            select(ComplaintRow.workflow_id, ComplaintRow.run_id, ComplaintRow.state_json)
            .where(*where)
            .order_by(
                ComplaintRow.due_at.is_(None),  # false before true on both databases: NULLs last
                ComplaintRow.due_at,
                ComplaintRow.created_at,
                ComplaintRow.complaint_id,
            )
            .limit(limit)
            .offset(offset)
        )
        count_query = select(func.count()).select_from(ComplaintRow).where(*where)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(rows_query)).all()
            total = (await conn.execute(count_query)).scalar_one()
        records = [
            ComplaintRecord(
                workflow_id=r.workflow_id,
                run_id=r.run_id,
                state=ComplaintState.model_validate_json(r.state_json),
            )
            for r in rows
        ]
        return QueuePage(records=records, total=total)


def _filters(
    *, kind: str | None, status: str | None, escalated: bool, search: str | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [ComplaintRow.status.not_in(sorted(s.value for s in FINAL_STATUSES))]
    if kind is not None:
        where.append(ComplaintRow.kind == kind)
    if status is not None:
        where.append(ComplaintRow.status == status)
    if escalated:
        where.append(ComplaintRow.escalated_at.is_not(None))
    text = (search or "").strip()
    if text:
        where.append(_search(text))
    return where


def _search(text: str) -> ColumnElement[bool]:
    """Any of the three ids equal to `text`, or a complaint id that starts with it, case-sensitively.

    SQLite's LIKE ignores the case of ASCII letters where PostgreSQL's does not; comparing the id's first
    characters as well holds both databases to the exact prefix."""
    starts_with = func.substr(ComplaintRow.complaint_id, 1, len(text)) == text
    return or_(
        ComplaintRow.complaint_id == text,
        ComplaintRow.order_id == text,
        ComplaintRow.customer_id == text,
        and_(ComplaintRow.complaint_id.like(like_prefix(text), escape=LIKE_ESCAPE), starts_with),
    )
