"""The ledger's repository: every read and write the rest of the system makes, each in one transaction.

Idempotency is built from `INSERT ... ON CONFLICT DO NOTHING` on the unique keys of `ledger.schema`, then a
read of the row that won; so a repeat, a retry or a racing duplicate returns the existing row and writes
nothing, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, delete, event, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dispatch.events import activation_events, complaint_events
from ledger.deliveries import add_notice, announce
from ledger.records import (
    ActivationRecord,
    Balance,
    BalanceEntry,
    ComplaintRecord,
    ComplaintTransition,
    IssuedRefund,
    IssuedReplacement,
    Notification,
    OrderRemedy,
    OutboxMessage,
    RefundIssue,
    RemedyKind,
    ReplacementIssue,
)
from ledger.schema import (
    ActivationRow,
    BalanceEntryRow,
    Base,
    ComplaintEventRow,
    ComplaintRow,
    EvidenceRow,
    NotificationRow,
    OrderRow,
    RefundRow,
    RemedyRow,
    ReplacementRow,
    VaultSecretRow,
)
from policy import ids
from policy.activation import ActivationState
from policy.complaint import ComplaintState, SealedSecret
from policy.due import next_due
from policy.evidence import EvidenceFile
from policy.models import (
    ActivationStatus,
    ComplaintEvent,
    ComplaintStatus,
    EvidenceRef,
    Money,
    Order,
    Product,
    ProductKind,
    ReplacementOffer,
)
from starter.telemetry import traces


class OrderConflict(Exception):
    """The order id is taken by an order with different contents."""


class OrderAlreadyRefunded(Exception):
    """The order's price went back already, through another complaint or its activation."""

    def __init__(self, refund: IssuedRefund) -> None:
        super().__init__(f"order {refund.order_id} was refunded by {refund.source_kind} {refund.source_id}")
        self.refund = refund


class OrderAlreadyRemedied(Exception):
    """The order was made good already, by a replacement, or by a refund where a replacement is asked."""

    def __init__(self, remedy: OrderRemedy) -> None:
        super().__init__(
            f"order {remedy.order_id} was made good by the {remedy.kind} of {remedy.source_kind} "
            f"{remedy.source_id}"
        )
        self.remedy = remedy


def _now() -> datetime:
    return datetime.now(UTC)


def _engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        _owner_only(Path(parsed.database))
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_foreign_keys)
        return engine
    engine = create_async_engine(url, pool_pre_ping=True)
    event.listen(engine.sync_engine, "do_connect", _refused_as_a_database_error)
    return engine


FIXED_AT_FILING = frozenset({"complaint_id", "workflow_id", "run_id"})
"""A complaint projection's columns its later events never change: its id, and where its first run is."""

DELIVERY_RETRY_FOR = timedelta(days=3)
"""How long a notice is retried by default (`REFUND_DESK_DELIVERY_RETRY_FOR` in the worker)."""

SQLITE_FILE_MODE = 0o600
"""The ledger holds orders, balances, evidence and sealed credentials: its file is its owner's alone, as the
key files are."""


def _owner_only(database: Path) -> None:
    """Create the SQLite file 0600 before SQLite first opens it, and bring an existing one (and its -wal and
    -shm) to 0600. SQLite creates its -wal and -shm files with the database file's mode.

    A file another user owns keeps its mode: only its owner may change it, and the ledger must still open."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SQLITE_FILE_MODE))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            path.chmod(SQLITE_FILE_MODE)


def _refused_as_a_database_error(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """asyncpg reports a server that does not answer (connection refused, host unreachable, a timeout) as
    a bare `OSError`, which SQLAlchemy passes on unwrapped; raised as the driver's `OperationalError`, it
    reaches callers as SQLAlchemy's, like every other failure of the database."""
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as error:
        raise dialect.loaded_dbapi.OperationalError(f"cannot connect to the database: {error}") from error


def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    """SQLite leaves foreign keys unchecked unless asked, per connection; PostgreSQL always checks.

    And write-ahead logging: the worker and the API write one file from two processes, and in SQLite's
    default rollback journal a writer blocks every reader and each commit syncs twice. In WAL mode readers
    never wait and a commit syncs once (`synchronous` stays FULL: a refund the ledger acknowledged survives
    a power cut)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


class Ledger:
    def __init__(self, engine: AsyncEngine, *, delivery_retry_for: timedelta = DELIVERY_RETRY_FOR) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self.delivery_retry_for = delivery_retry_for
        """How long the notices this ledger writes are retried before they are marked failed."""

    @classmethod
    def connect(cls, url: str, *, delivery_retry_for: timedelta = DELIVERY_RETRY_FOR) -> Ledger:
        engine = _engine(url)
        traces.instrument_engine(engine)  # where this process traces: each statement a span (no values)
        return cls(engine, delivery_retry_for=delivery_retry_for)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    # ------------------------------------------------------------------------------------------ orders

    async def record_order(self, order: Order) -> tuple[Order, bool]:
        """Store an order once. The same order again returns (order, False); a different one conflicts."""
        values = {
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "sku": order.product.sku,
            "product_kind": order.product.kind.value,
            "product_name": order.product.name,
            "amount": order.price.amount,
            "currency": order.price.currency,
            "placed_at": order.placed_at,
            "recorded_at": _now(),
        }
        async with self._tx() as conn:
            result = await conn.execute(
                self._insert(OrderRow).values(values).on_conflict_do_nothing(index_elements=["order_id"])
            )
            created = result.rowcount == 1
            row = (await conn.execute(select(OrderRow).where(OrderRow.order_id == order.order_id))).one()
        stored = _order(row)
        if not created and stored != order:
            raise OrderConflict(f"order {order.order_id} already exists with different contents")
        return stored, created

    async def get_order(self, order_id: str) -> Order | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(OrderRow).where(OrderRow.order_id == order_id))).one_or_none()
        return None if row is None else _order(row)

    # -------------------------------------------------------------------------------------- complaints

    async def record_transition(self, workflow_id: str, run_id: str, transition: ComplaintTransition) -> bool:
        """Append the event and bring the projection up to it, in one transaction.

        Returns False when the event was already recorded (a retried activity). The projection only moves
        forward: a late write of an older state never overwrites a newer one. It keeps the run that filed
        the complaint, from which the runs it continues as follow, and the instant the complaint is next due
        (`policy.due`), which orders support's queue (`ledger.queue`).
        """
        state, event = transition.state, transition.event
        projection = {
            "complaint_id": state.complaint_id,
            "workflow_id": workflow_id,
            "run_id": run_id,
            "order_id": state.order.order_id,
            "customer_id": state.customer_id,
            "kind": state.kind.value,
            "status": state.status.value,
            "created_at": state.created_at,
            "deadline": state.deadline,
            "remedy_choice": None if state.remedy_choice is None else state.remedy_choice.value,
            "outcome": None if state.resolution is None else state.resolution.outcome.value,
            "reason_code": None if state.resolution is None else state.resolution.reason_code,
            "last_seq": event.seq,
            "updated_at": event.at,
            "state_json": state.model_copy(update={"events": []}).model_dump_json(),
            "due_at": next_due(state),
            "escalated_at": state.escalated_at,
        }
        upsert = self._insert(ComplaintRow).values(projection)
        upsert = upsert.on_conflict_do_update(
            index_elements=["complaint_id"],
            set_={k: upsert.excluded[k] for k in projection if k not in FIXED_AT_FILING},
            where=ComplaintRow.last_seq < upsert.excluded.last_seq,
        )
        append = (
            self._insert(ComplaintEventRow)
            .values(
                complaint_id=state.complaint_id,
                seq=event.seq,
                at=event.at,
                actor=event.actor,
                type=event.type,
                detail_json=json.dumps(event.detail, sort_keys=True, default=str),
            )
            .on_conflict_do_nothing(index_elements=["complaint_id", "seq"])
        )
        async with self._tx() as conn:
            previous = await self._complaint_status(conn, state.complaint_id)
            await conn.execute(upsert)
            result = await conn.execute(append)
            if result.rowcount != 1:
                return False  # a retried activity: the event, its notices and webhooks are there already
            now = _now()
            for message in transition.notifications:
                await self._add_notice(conn, message, now)
            await announce(
                conn,
                self._insert,
                complaint_events(state, event, previous),
                now=now,
                retry_for=self.delivery_retry_for,
            )
            if state.is_final:
                await conn.execute(
                    delete(VaultSecretRow).where(VaultSecretRow.complaint_id == state.complaint_id)
                )
        return True

    async def _complaint_status(self, conn: AsyncConnection, complaint_id: str) -> ComplaintStatus | None:
        status = (
            await conn.execute(select(ComplaintRow.status).where(ComplaintRow.complaint_id == complaint_id))
        ).scalar_one_or_none()
        return None if status is None else ComplaintStatus(status)

    async def get_complaint(self, complaint_id: str, *, events: bool = True) -> ComplaintRecord | None:
        """The projection, with its audit trail unless `events` is False (where the caller needs only the
        run, the status or the order: a second query and most of the parsing saved)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(ComplaintRow).where(ComplaintRow.complaint_id == complaint_id))
            ).one_or_none()
            if row is None:
                return None
            trail = await self._events(conn, complaint_id) if events else []
        state = ComplaintState.model_validate_json(row.state_json).model_copy(update={"events": trail})
        return ComplaintRecord(workflow_id=row.workflow_id, run_id=row.run_id, state=state)

    async def complaint_events(self, complaint_id: str) -> list[ComplaintEvent]:
        async with self.engine.connect() as conn:
            return await self._events(conn, complaint_id)

    async def _events(self, conn: AsyncConnection, complaint_id: str) -> list[ComplaintEvent]:
        rows = await conn.execute(
            select(ComplaintEventRow)
            .where(ComplaintEventRow.complaint_id == complaint_id)
            .order_by(ComplaintEventRow.seq)
        )
        return [
            ComplaintEvent(seq=r.seq, at=r.at, actor=r.actor, type=r.type, detail=json.loads(r.detail_json))
            for r in rows
        ]

    async def list_complaints(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        customer_id: str | None = None,
        order_id: str | None = None,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
    ) -> list[ComplaintRecord]:
        """Newest first, keyset-paginated on (created_at, complaint_id). Events are not included."""
        query: Select[Any] = select(ComplaintRow)
        for column, value in (
            (ComplaintRow.status, status),
            (ComplaintRow.kind, kind),
            (ComplaintRow.customer_id, customer_id),
            (ComplaintRow.order_id, order_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if after is not None:
            created_at, complaint_id = after
            query = query.where(
                or_(
                    ComplaintRow.created_at < created_at,
                    and_(ComplaintRow.created_at == created_at, ComplaintRow.complaint_id < complaint_id),
                )
            )
        query = query.order_by(ComplaintRow.created_at.desc(), ComplaintRow.complaint_id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            ComplaintRecord(
                workflow_id=r.workflow_id,
                run_id=r.run_id,
                state=ComplaintState.model_validate_json(r.state_json),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------------------------------- money

    async def issue_refund(self, issue: RefundIssue) -> IssuedRefund:
        """Credit the customer once per source and once per order. A repeat returns the refund already
        issued, unchanged. An order made good through another source writes nothing and raises:
        `OrderAlreadyRefunded` if its price went back, `OrderAlreadyRemedied` if it was replaced."""
        refund_id = ids.refund_id()
        async with self._tx() as conn:
            created = await self._claim_remedy(
                conn, issue.order_id, "refund", issue.source_kind, issue.source_id, refund_id, issue.at
            )
            if created:
                await conn.execute(
                    self._insert(RefundRow).values(
                        refund_id=refund_id,
                        source_kind=issue.source_kind,
                        source_id=issue.source_id,
                        customer_id=issue.customer_id,
                        order_id=issue.order_id,
                        amount=issue.amount.amount,
                        currency=issue.amount.currency,
                        issued_at=issue.at,
                        actor=issue.actor,
                    )
                )
                await conn.execute(
                    self._insert(BalanceEntryRow).values(
                        customer_id=issue.customer_id,
                        currency=issue.amount.currency,
                        amount=issue.amount.amount,
                        kind="refund",
                        refund_id=refund_id,
                        at=issue.at,
                        actor=issue.actor,
                    )
                )
            row = (
                await conn.execute(
                    select(RefundRow).where(
                        RefundRow.source_kind == issue.source_kind, RefundRow.source_id == issue.source_id
                    )
                )
            ).one_or_none()
            if row is None:
                remedy = await self._remedy(conn, issue.order_id)
                if remedy.kind == "refund":
                    other = (
                        await conn.execute(select(RefundRow).where(RefundRow.refund_id == remedy.remedy_id))
                    ).one()
                    raise OrderAlreadyRefunded(_refund(other, created=False))
                raise OrderAlreadyRemedied(remedy)
        return _refund(row, created=created)

    async def refund_of_order(self, order_id: str) -> IssuedRefund | None:
        """The one refund an order can have (R16), whichever complaint or activation issued it."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(RefundRow).where(RefundRow.order_id == order_id))).one_or_none()
        return None if row is None else _refund(row, created=False)

    async def remedy_of_order(self, order_id: str) -> OrderRemedy | None:
        """How the order was made good (R12, R16), if it was: its one refund or replacement."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(RemedyRow).where(RemedyRow.order_id == order_id))).one_or_none()
        return None if row is None else _remedy(row)

    async def _claim_remedy(
        self,
        conn: AsyncConnection,
        order_id: str,
        kind: RemedyKind,
        source_kind: str,
        source_id: str,
        remedy_id: str,
        at: datetime,
    ) -> bool:
        """Take the order's one remedy for this source, first thing in the transaction that issues it: the
        primary key on `remedies(order_id)` lets exactly one of two racing refunds or replacements in,
        where a read first would let both see none. Returns whether this call took it."""
        inserted = await conn.execute(
            self._insert(RemedyRow)
            .values(
                order_id=order_id,
                kind=kind,
                source_kind=source_kind,
                source_id=source_id,
                remedy_id=remedy_id,
                issued_at=at,
            )
            .on_conflict_do_nothing(index_elements=["order_id"])
        )
        return inserted.rowcount == 1

    async def _remedy(self, conn: AsyncConnection, order_id: str) -> OrderRemedy:
        """The remedy another source took for the order, read in the transaction that lost it."""
        return _remedy((await conn.execute(select(RemedyRow).where(RemedyRow.order_id == order_id))).one())

    async def refunds_for(self, source_kind: str, source_id: str) -> list[IssuedRefund]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(RefundRow).where(
                    RefundRow.source_kind == source_kind, RefundRow.source_id == source_id
                )
            )
            return [_refund(r, created=False) for r in rows]

    async def issue_replacement(self, issue: ReplacementIssue) -> IssuedReplacement:
        """Record the replacement once per complaint and once per order. A repeat returns the one already
        issued; an order made good through another source (refunded, or replaced for another complaint)
        writes nothing and raises `OrderAlreadyRemedied`."""
        replacement_id = ids.replacement_id()
        async with self._tx() as conn:
            created = await self._claim_remedy(
                conn, issue.order_id, "replacement", "complaint", issue.complaint_id, replacement_id, issue.at
            )
            if created:
                await conn.execute(
                    self._insert(ReplacementRow).values(
                        replacement_id=replacement_id,
                        complaint_id=issue.complaint_id,
                        customer_id=issue.customer_id,
                        order_id=issue.order_id,
                        sku=issue.offer.sku,
                        name=issue.offer.name,
                        value=issue.offer.value.amount,
                        currency=issue.offer.value.currency,
                        issued_at=issue.at,
                        actor=issue.actor,
                    )
                )
            row = (
                await conn.execute(
                    select(ReplacementRow).where(ReplacementRow.complaint_id == issue.complaint_id)
                )
            ).one_or_none()
            if row is None:
                raise OrderAlreadyRemedied(await self._remedy(conn, issue.order_id))
        return _replacement(row, created=created)

    async def replacements_for(self, complaint_id: str) -> list[IssuedReplacement]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(ReplacementRow).where(ReplacementRow.complaint_id == complaint_id)
            )
            return [_replacement(r, created=False) for r in rows]

    async def balance(self, customer_id: str) -> Balance:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(BalanceEntryRow)
                    .where(BalanceEntryRow.customer_id == customer_id)
                    .order_by(BalanceEntryRow.id)
                )
            ).all()
        totals: dict[str, Decimal] = {}
        for r in rows:
            totals[r.currency] = totals.get(r.currency, Decimal(0)) + r.amount
        entries = [
            BalanceEntry(
                at=r.at,
                kind=r.kind,
                amount=Money(amount=r.amount, currency=r.currency),
                refund_id=r.refund_id,
                actor=r.actor,
            )
            for r in rows
        ]
        return Balance(customer_id=customer_id, totals=totals, entries=entries)

    # -------------------------------------------------------------------------------------- activations

    async def record_activation(self, workflow_id: str, run_id: str, state: ActivationState) -> bool:
        """Bring the activation's projection up to `state`; an older version never overwrites a newer one
        (a retried or late write). Returns whether this call changed the row."""
        values = {
            "activation_id": state.activation_id,
            "workflow_id": workflow_id,
            "run_id": run_id,
            "order_id": state.order.order_id,
            "customer_id": state.customer_id,
            "status": state.status.value,
            "started_at": state.started_at,
            "expires_at": state.expires_at,
            "version": state.version,
            "updated_at": _now(),
            "state_json": state.model_dump_json(),
        }
        upsert = self._insert(ActivationRow).values(values)
        upsert = upsert.on_conflict_do_update(
            index_elements=["activation_id"],
            set_={k: upsert.excluded[k] for k in values if k != "activation_id"},
            where=ActivationRow.version < upsert.excluded.version,
        )
        async with self._tx() as conn:
            before = await conn.execute(
                select(ActivationRow.status).where(ActivationRow.activation_id == state.activation_id)
            )
            previous = before.scalar_one_or_none()
            result = await conn.execute(upsert)
            if result.rowcount != 1:
                return False
            made = activation_events(state, None if previous is None else ActivationStatus(previous))
            await announce(conn, self._insert, made, now=_now(), retry_for=self.delivery_retry_for)
        return True

    async def get_activation(self, activation_id: str) -> ActivationRecord | None:
        return await self._activation(ActivationRow.activation_id == activation_id)

    async def activation_of_order(self, order_id: str) -> ActivationRecord | None:
        return await self._activation(ActivationRow.order_id == order_id)

    async def _activation(self, where: Any) -> ActivationRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ActivationRow).where(where))).one_or_none()
        if row is None:
            return None
        state = ActivationState.model_validate_json(row.state_json)
        return ActivationRecord(workflow_id=row.workflow_id, run_id=row.run_id, state=state)

    # ----------------------------------------------------------------------------------------- evidence

    async def store_evidence(self, complaint_id: str, files: Sequence[EvidenceFile]) -> list[EvidenceRef]:
        """Keep a complaint's attachments, all or none, once per position; returns their references."""
        async with self._tx() as conn:
            for position, file in enumerate(files):
                await conn.execute(
                    self._insert(EvidenceRow)
                    .values(
                        ref=ids.evidence_ref(),
                        complaint_id=complaint_id,
                        position=position,
                        name=file.name,
                        content_type=file.content_type,
                        size=len(file.data),
                        sha256=file.sha256,
                        data=file.data,
                        created_at=_now(),
                    )
                    .on_conflict_do_nothing(index_elements=["complaint_id", "position"])
                )
        return await self.evidence_of(complaint_id)

    async def evidence_of(self, complaint_id: str) -> list[EvidenceRef]:
        query = (
            select(
                EvidenceRow.ref,
                EvidenceRow.name,
                EvidenceRow.content_type,
                EvidenceRow.size,
                EvidenceRow.sha256,
            )
            .where(EvidenceRow.complaint_id == complaint_id)
            .order_by(EvidenceRow.position)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            EvidenceRef(ref=r.ref, name=r.name, content_type=r.content_type, size=r.size, sha256=r.sha256)
            for r in rows
        ]

    async def evidence_data(self, ref: str) -> tuple[str, EvidenceFile] | None:
        """The complaint an attachment belongs to, and the file itself, for whoever reviews it."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(EvidenceRow).where(EvidenceRow.ref == ref))).one_or_none()
        if row is None:
            return None
        return row.complaint_id, EvidenceFile(name=row.name, content_type=row.content_type, data=row.data)

    async def stored_evidence(self, complaint_id: str, ref: str) -> tuple[EvidenceRef, bytes] | None:
        """One attachment of one complaint as the row holds it: what intake recorded of the file (name, type,
        size, SHA-256) and the bytes, for whoever opens it to check the one against the other. Read as
        stored, unvalidated: a damaged row is the caller's to refuse. None for a ref not of this complaint."""
        query = select(EvidenceRow).where(EvidenceRow.ref == ref, EvidenceRow.complaint_id == complaint_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        kept = EvidenceRef.model_construct(
            ref=row.ref, name=row.name, content_type=row.content_type, size=row.size, sha256=row.sha256
        )
        return kept, bytes(row.data)

    async def discard_evidence(self, complaint_id: str) -> int:
        """Undo `store_evidence` for a complaint that was never started (a lost race for R15)."""
        async with self._tx() as conn:
            result = await conn.execute(delete(EvidenceRow).where(EvidenceRow.complaint_id == complaint_id))
        return result.rowcount

    # ------------------------------------------------------------------------------------ notifications

    async def enqueue_notification(self, message: Notification) -> bool:
        """Put a message in the outbox once; returns False when its dedupe key was already there."""
        async with self._tx() as conn:
            known = await conn.execute(
                select(NotificationRow.id).where(NotificationRow.dedupe_key == message.dedupe_key)
            )
            if known.first() is not None:
                return False
            await self._add_notice(conn, message, _now())
        return True

    async def _add_notice(self, conn: AsyncConnection, message: Notification, now: datetime) -> None:
        """The outbox row for `message` and the delivery of its email, or nothing if its dedupe key is
        there already."""
        await add_notice(conn, self._insert, message, now=now, retry_for=self.delivery_retry_for)

    async def outbox(self, *, complaint_id: str | None = None) -> list[OutboxMessage]:
        query = select(NotificationRow).order_by(NotificationRow.id)
        if complaint_id is not None:
            query = query.where(NotificationRow.complaint_id == complaint_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            OutboxMessage(
                dedupe_key=r.dedupe_key,
                recipient=r.recipient,
                template=r.template,
                complaint_id=r.complaint_id,
                payload=json.loads(r.payload_json),
                created_at=r.created_at,
                sent_at=r.sent_at,
            )
            for r in rows
        ]

    # -------------------------------------------------------------------------------------------- vault

    async def store_secret(self, complaint_id: str, request_no: int, sealed: SealedSecret) -> str:
        """File sealed credentials under an opaque reference, once per access request."""
        async with self._tx() as conn:
            await conn.execute(
                self._insert(VaultSecretRow)
                .values(
                    ref=ids.vault_ref(),
                    complaint_id=complaint_id,
                    request_no=request_no,
                    key_id=sealed.key_id,
                    nonce=sealed.nonce,
                    ciphertext=sealed.ciphertext,
                    created_at=_now(),
                )
                .on_conflict_do_nothing(index_elements=["complaint_id", "request_no"])
            )
            ref: str = (
                await conn.execute(
                    select(VaultSecretRow.ref).where(
                        VaultSecretRow.complaint_id == complaint_id, VaultSecretRow.request_no == request_no
                    )
                )
            ).scalar_one()
        return ref

    async def sealed_secret(self, ref: str) -> tuple[str, SealedSecret] | None:
        """The sealed credentials behind `ref` and the complaint they were sealed for."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(VaultSecretRow).where(VaultSecretRow.ref == ref))).one_or_none()
        if row is None:
            return None
        return row.complaint_id, SealedSecret(key_id=row.key_id, nonce=row.nonce, ciphertext=row.ciphertext)

    async def table_counts(self, tables: Sequence[str] | None = None) -> dict[str, int]:
        """Row counts per table: what tests compare to prove a refused request wrote nothing."""
        counts: dict[str, int] = {}
        async with self.engine.connect() as conn:
            for name, table in Base.metadata.tables.items():
                if tables is None or name in tables:
                    counts[name] = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
        return counts


def _order(row: Any) -> Order:
    return Order(
        order_id=row.order_id,
        customer_id=row.customer_id,
        product=Product(sku=row.sku, kind=ProductKind(row.product_kind), name=row.product_name),
        price=Money(amount=row.amount, currency=row.currency),
        placed_at=row.placed_at,
    )


def _refund(row: Any, *, created: bool) -> IssuedRefund:
    return IssuedRefund(
        refund_id=row.refund_id,
        source_kind=row.source_kind,
        source_id=row.source_id,
        customer_id=row.customer_id,
        order_id=row.order_id,
        amount=Money(amount=row.amount, currency=row.currency),
        issued_at=row.issued_at,
        actor=row.actor,
        created=created,
    )


def _remedy(row: Any) -> OrderRemedy:
    return OrderRemedy(
        order_id=row.order_id,
        kind=row.kind,
        source_kind=row.source_kind,
        source_id=row.source_id,
        remedy_id=row.remedy_id,
        issued_at=row.issued_at,
    )


def _replacement(row: Any, *, created: bool) -> IssuedReplacement:
    return IssuedReplacement(
        replacement_id=row.replacement_id,
        complaint_id=row.complaint_id,
        offer=ReplacementOffer(
            sku=row.sku, name=row.name, value=Money(amount=row.value, currency=row.currency)
        ),
        issued_at=row.issued_at,
        created=created,
    )
