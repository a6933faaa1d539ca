"""The business figures the API's `/metrics` shows (docs/metrics.md), read from the ledger at scrape time.

Read from the ledger rather than counted in a process, so every API process shows the same figures and a
restart loses none: open complaints by kind and status (the projection), escalations (R13's
`escalated_at`, which stays set), refunds and replacements with their money by currency, notices by
channel and how their delivery ended, and the age of the oldest message still waiting to go out.

Each figure but the open complaints and the lag only grows: refunds, replacements and escalations are
never deleted, and notices are counted from the delivery log's attempts, which are only appended (a
redelivered webhook that arrives again counts again: it was delivered twice). Money is summed exactly in
ten-thousandths (the ledger's scale, `ledger.types.SCALE`), as integers on both databases: SQLite would
otherwise sum its decimal text as floats.

Cost: a handful of aggregate queries per scrape, each a scan of its table (the open complaints use the
queue's status index). A scrape every 15 s is nothing beside the desk's own traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import BigInteger, ColumnElement, Numeric, cast, func, literal_column, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.deliveries import EMAIL, FAILED, PENDING, SENT, UNDELIVERABLE, WEBHOOK
from ledger.schema import ComplaintRow, DeliveryAttemptRow, DeliveryRow, RefundRow, ReplacementRow
from ledger.types import SCALE
from policy.models import FINAL_STATUSES, ComplaintKind, ComplaintStatus

OPEN_STATUSES: Final = tuple(s.value for s in ComplaintStatus if s not in FINAL_STATUSES)
KINDS: Final = tuple(k.value for k in ComplaintKind)
CHANNELS: Final = (EMAIL, WEBHOOK)

NOTICE_STATES: Final = {SENT: "delivered", FAILED: "failed", UNDELIVERABLE: "undeliverable"}
"""How a delivery's attempt ended, as the metric names it: delivered, failed for good once its retry
period ran out, or undeliverable (nowhere to send it: a customer without an email address). Attempts that
will be retried (outcome `pending`) are not counted."""

_UNITS = 10**SCALE


@dataclass(frozen=True)
class MoneyMoved:
    """How many refunds (or replacements) were issued in one currency, and their amount in all."""

    count: int
    amount: Decimal


@dataclass(frozen=True)
class LedgerFigures:
    """The figures at one instant; every known kind, status, channel and state has its entry (0 if none),
    so a series falls to zero rather than vanishing."""

    open_complaints: dict[tuple[str, str], int] = field(default_factory=dict)
    """(kind, status) of every complaint not final."""
    escalations: dict[str, int] = field(default_factory=dict)
    """By kind: complaints R13 escalated (support had not reviewed them by the deadline)."""
    refunds: dict[str, MoneyMoved] = field(default_factory=dict)
    """By currency, every refund (activations' included)."""
    replacements: dict[str, MoneyMoved] = field(default_factory=dict)
    """By currency, every replacement and its value."""
    notices: dict[tuple[str, str], int] = field(default_factory=dict)
    """(channel, state) of every finished delivery attempt, states as `NOTICE_STATES` names them."""
    dispatcher_lag: timedelta = timedelta(0)
    """How long the oldest message still pending has waited since it was written; 0 when none waits."""


class LedgerMetrics:
    """The figures over a ledger's engine: `await LedgerMetrics(ledger.engine).read(now)`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def read(self, now: datetime) -> LedgerFigures:
        """Every figure, read in one connection (not one snapshot: a complaint refunded between two
        queries may be counted open and refunded once)."""
        async with self.engine.connect() as conn:
            return LedgerFigures(
                open_complaints=await _open_complaints(conn),
                escalations=await _escalations(conn),
                refunds=await _money(conn, RefundRow.currency, RefundRow.amount),
                replacements=await _money(conn, ReplacementRow.currency, ReplacementRow.value),
                notices=await _notices(conn),
                dispatcher_lag=await _lag(conn, now),
            )


async def _open_complaints(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    counts = {(kind, status): 0 for kind in KINDS for status in OPEN_STATUSES}
    query = (
        select(ComplaintRow.kind, ComplaintRow.status, func.count())
        .where(ComplaintRow.status.in_(OPEN_STATUSES))
        .group_by(ComplaintRow.kind, ComplaintRow.status)
    )
    for kind, status, count in (await conn.execute(query)).all():
        counts[(kind, status)] = count
    return counts


async def _escalations(conn: AsyncConnection) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    query = (
        select(ComplaintRow.kind, func.count())
        .where(ComplaintRow.escalated_at.is_not(None))
        .group_by(ComplaintRow.kind)
    )
    for kind, count in (await conn.execute(query)).all():
        counts[kind] = count
    return counts


def _in_units(amount: Any) -> ColumnElement[int]:
    """An amount column in ten-thousandths, as an integer: exact to sum on either database (SQLite keeps
    the amount as decimal text, which its arithmetic turns into a number)."""
    scaled = type_coerce(amount, Numeric()) * literal_column(str(_UNITS))
    return cast(func.round(scaled), BigInteger)


async def _money(conn: AsyncConnection, currency: Any, amount: Any) -> dict[str, MoneyMoved]:
    query = select(currency, func.count(), func.sum(_in_units(amount))).group_by(currency)
    return {
        code: MoneyMoved(count=count, amount=Decimal(int(units or 0)).scaleb(-SCALE))
        for code, count, units in (await conn.execute(query)).all()
    }


async def _notices(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    counts = {(channel, state): 0 for channel in CHANNELS for state in NOTICE_STATES.values()}
    query = (
        select(DeliveryRow.channel, DeliveryAttemptRow.outcome, func.count())
        .select_from(DeliveryAttemptRow)
        .join(DeliveryRow, DeliveryRow.id == DeliveryAttemptRow.delivery_id)
        .where(DeliveryAttemptRow.outcome.in_(list(NOTICE_STATES)))
        .group_by(DeliveryRow.channel, DeliveryAttemptRow.outcome)
    )
    for channel, outcome, count in (await conn.execute(query)).all():
        counts[(channel, NOTICE_STATES[outcome])] = count
    return counts


async def _lag(conn: AsyncConnection, now: datetime) -> timedelta:
    """Since the oldest pending delivery was written (as `Deliveries.oldest_pending`); never negative."""
    query = select(func.min(DeliveryRow.created_at)).where(DeliveryRow.status == PENDING)
    oldest: datetime | None = (await conn.execute(query)).scalar_one()
    return max(now - oldest, timedelta(0)) if oldest is not None else timedelta(0)
