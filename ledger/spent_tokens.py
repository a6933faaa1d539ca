"""Spent tokens: a one-time console sign-in link once used, a browser session once signed out of.

A token of the browser pages (`starter.web.sessions`) is a signed JWT with an id (`jti` or `sid`); it is
refused from the moment its id is here. A row is only needed until the token would have expired anyway,
so spending one also sweeps the rows whose tokens have.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.schema import SpentTokenRow


class SpentTokens:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def spend(self, token_id: str, expires_at: datetime, *, now: datetime | None = None) -> bool:
        """Mark `token_id` spent; False if it already was (the second use of a one-time link)."""
        now = now or datetime.now(UTC)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(delete(SpentTokenRow).where(SpentTokenRow.expires_at < now))
                await conn.execute(
                    insert(SpentTokenRow).values(token_id=token_id, spent_at=now, expires_at=expires_at)
                )
        except IntegrityError:
            return False
        return True

    async def is_spent(self, token_id: str) -> bool:
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(SpentTokenRow.token_id).where(SpentTokenRow.token_id == token_id)
            )
            return found.first() is not None
