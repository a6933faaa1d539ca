"""Create or migrate the ledger schema with Alembic: `python -m ledger.migrate` (uses DATABASE_URL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.repository import Ledger
from ledger.settings import LedgerSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def _run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def upgrade_url(url: str) -> None:
    ledger = Ledger.connect(url)
    try:
        await upgrade(ledger.engine)
    finally:
        await ledger.close()


def main() -> None:
    url = LedgerSettings().database_url
    asyncio.run(upgrade_url(url))
    print(f"ledger schema is at head ({url.split('@')[-1]})")


if __name__ == "__main__":
    main()
