"""Idempotency keys: the first response to a request sent with a key, kept so a retry gets it back.

A row per (caller, key), the table's primary key. A request claims its key by inserting the row "in
progress" (no status yet) under a fresh `attempt` id; only the request whose insert wins runs, and it then
either completes the row with its response or, for an answer that must not be kept (a 5xx), releases it so
a retry runs again. Every later request with the key gets one of: the stored response (same method, path
and body), `Mismatch` (anything else: a key names one request), or `InProgress` while the first runs.

Two clocks bound a row's life. An answered key is kept `ttl` from its claim (24 h by default); past that
it is claimed afresh as if new, and old rows are purged a batch at a time, at most once a `PURGE_EVERY`
per store. An attempt that never finishes (its process died) holds the key for `lease`, whatever `ttl`
says, then the next request with it takes the key over; a completion or release under the old attempt id
then changes nothing.

The table lives on `ledger.schema.Base`'s metadata, created by migration 0004.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Index, Integer, LargeBinary, String, Text, delete, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from ledger.schema import Base
from ledger.types import UtcDateTime

DEFAULT_TTL = timedelta(days=1)
LEASE = timedelta(minutes=2)
"""How long an unfinished attempt holds its key: longer than any request runs (the desk waits 30 s for a
workflow), short enough that a crashed attempt does not block a client's retries for long."""
PURGE_EVERY = 60.0
"""Seconds between two purges of expired keys by one store."""
PURGE_BATCH = 500
"""Expired rows one purge deletes at most, so a purge never holds the table for long."""
CLAIM_ATTEMPTS = 3
"""Tries at claiming one key when its row changes under us (purged, taken over) between two statements."""


class IdempotencyKeyRow(Base):
    """A key's request (method, path, a hash of the body) and, once the request finished, its response."""

    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[str] = mapped_column(String(32))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    location: Mapped[str | None] = mapped_column(Text, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)


@dataclass(frozen=True)
class KeyedRequest:
    """What a key stands for: a retry must match all three."""

    method: str
    path: str
    request_hash: str


@dataclass(frozen=True)
class StoredResponse:
    status: int
    content_type: str | None
    location: str | None
    body: bytes


@dataclass(frozen=True)
class Claimed:
    """This request holds the key: run it, then `complete` or `release` with `attempt`."""

    attempt: str


@dataclass(frozen=True)
class Replay:
    """The key's request ran already: this is what it answered."""

    response: StoredResponse


@dataclass(frozen=True)
class Mismatch:
    """The key was first sent with another request (`first`)."""

    first: KeyedRequest


@dataclass(frozen=True)
class InProgress:
    """The key's first request is still running."""


Claim = Claimed | Replay | Mismatch | InProgress


def _now() -> datetime:
    return datetime.now(UTC)


class IdempotencyStore:
    """Claims, completions and releases of keys in the ledger's database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: AsyncEngine,
        ttl: timedelta = DEFAULT_TTL,
        *,
        lease: timedelta = LEASE,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.lease = lease
        self.clock = clock
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._purged_at: float | None = None

    async def claim(self, caller: str, key: str, request: KeyedRequest) -> Claim:
        """Take `key` for `request`, or say why not. Expired rows are purged first, now and then."""
        if self._purged_at is None or time.monotonic() - self._purged_at >= PURGE_EVERY:
            self._purged_at = time.monotonic()
            await self.purge_expired()
        attempt = secrets.token_hex(16)
        for _ in range(CLAIM_ATTEMPTS):
            async with self.engine.begin() as conn:
                claim = await self._try_claim(conn, caller, key, request, attempt)
            if claim is not None:
                return claim
        return InProgress()

    async def _try_claim(
        self, conn: AsyncConnection, caller: str, key: str, request: KeyedRequest, attempt: str
    ) -> Claim | None:
        """One try: insert the row, else judge the one there. None when that row vanished or was taken
        over between the two statements (the caller tries again)."""
        now = self.clock()
        fresh = {
            "method": request.method,
            "path": request.path,
            "request_hash": request.request_hash,
            "attempt": attempt,
            "status": None,
            "content_type": None,
            "location": None,
            "body": None,
            "created_at": now,
        }
        inserted = await conn.execute(
            self._insert(IdempotencyKeyRow)
            .values(caller=caller, key=key, **fresh)
            .on_conflict_do_nothing(index_elements=["caller", "key"])
        )
        if inserted.rowcount == 1:
            return Claimed(attempt)
        row = (await conn.execute(select(IdempotencyKeyRow).where(*_row(caller, key)))).one_or_none()
        if row is None:
            return None
        if self._expired(row, now):
            taken = await conn.execute(
                update(IdempotencyKeyRow)
                .where(*_row(caller, key), IdempotencyKeyRow.attempt == row.attempt)
                .values(**fresh)
            )
            return Claimed(attempt) if taken.rowcount == 1 else None
        return _judge(row, request)

    def _expired(self, row: Any, now: datetime) -> bool:
        """An answered key past its time to live, or an attempt that outlived its lease unfinished."""
        age: timedelta = now - row.created_at
        return age >= (self.lease if row.status is None else self.ttl)

    async def complete(self, caller: str, key: str, attempt: str, response: StoredResponse) -> bool:
        """Keep `response` as the key's answer; False if the attempt lost the key (its lease ran out)."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(IdempotencyKeyRow)
                .where(*_row(caller, key), *_running(attempt))
                .values(
                    status=response.status,
                    content_type=response.content_type,
                    location=response.location,
                    body=response.body,
                )
            )
        return done.rowcount == 1

    async def release(self, caller: str, key: str, attempt: str) -> None:
        """Give the key up unanswered, so the next request with it runs (after a 5xx, say)."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(IdempotencyKeyRow).where(*_row(caller, key), *_running(attempt)))

    async def purge_expired(self, limit: int = PURGE_BATCH) -> int:
        """Delete up to `limit` of the oldest keys past their time to live (an unfinished one only once its
        lease is over too); how many went. On PostgreSQL rows another purge holds are skipped rather than
        waited for."""
        now = self.clock()
        expired = (
            IdempotencyKeyRow.created_at < now - self.ttl,
            or_(IdempotencyKeyRow.status.is_not(None), IdempotencyKeyRow.created_at < now - self.lease),
        )
        oldest = (
            select(IdempotencyKeyRow.caller, IdempotencyKeyRow.key)
            .where(*expired)
            .order_by(IdempotencyKeyRow.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.engine.begin() as conn:
            purged = await conn.execute(
                delete(IdempotencyKeyRow).where(
                    tuple_(IdempotencyKeyRow.caller, IdempotencyKeyRow.key).in_(oldest), *expired
                )
            )
        return purged.rowcount


def _row(caller: str, key: str) -> tuple[Any, ...]:
    return IdempotencyKeyRow.caller == caller, IdempotencyKeyRow.key == key


def _running(attempt: str) -> tuple[Any, ...]:
    return IdempotencyKeyRow.attempt == attempt, IdempotencyKeyRow.status.is_(None)


def _judge(row: Any, request: KeyedRequest) -> Claim:
    """What a live row says to a request with its key."""
    first = KeyedRequest(method=row.method, path=row.path, request_hash=row.request_hash)
    if first != request:
        return Mismatch(first)
    if row.status is None:
        return InProgress()
    body: bytes = row.body or b""
    return Replay(StoredResponse(row.status, row.content_type, row.location, body))
