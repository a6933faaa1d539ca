"""DATABASE_URL as a process meets it (the CLI, `make run`): checked before anything connects, and named
(its password hidden) when the ledger behind it does not answer.

A URL that parses can still name a database no engine can be made for: a driver that is not installed
(`postgresql://` wants psycopg), a driver that is not async (`sqlite://`), a port out of range, a SQLite file
whose folder cannot be made. SQLAlchemy, asyncpg and the OS raise each of these as something else
(ImportError, InvalidRequestError, OverflowError at the first connect, OSError), from deep inside the
desk's setup; checked here first, each is one `database_url_invalid` line. A database that is there but
does not answer is the shared table's `ledger_unavailable`.
"""

from __future__ import annotations

import asyncio

from alembic.util import CommandError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, InvalidRequestError

from ledger.migrate import upgrade_url
from ledger.repository import Ledger
from ledger.settings import LedgerSettings

MAX_PORT = 65_535


class DatabaseUrlUnusable(ArgumentError):
    """DATABASE_URL parses, but no engine can be made for what it names. An `ArgumentError`, as SQLAlchemy
    raises for a URL it cannot parse, so the shared table answers both as `database_url_invalid`."""


def checked_database_url() -> str:
    """DATABASE_URL, once an engine has been made for it: the driver loaded and a SQLite file's folder made,
    as the desk's own `Ledger.connect` does (nothing connects yet)."""
    url = LedgerSettings().database_url
    parsed = parsed_url(url)
    if parsed.port is not None and not 0 < parsed.port <= MAX_PORT:
        raise DatabaseUrlUnusable(f"port {parsed.port} is not a TCP port (1-{MAX_PORT})")
    try:
        Ledger.connect(url)  # dropped at once: an engine holds no connection before its first use
    except ImportError as missing:
        raise DatabaseUrlUnusable(
            f"{parsed.drivername}:// needs the {missing.name or 'driver'} module, which is not installed; "
            "the ledger runs on postgresql+asyncpg:// or sqlite+aiosqlite://"
        ) from missing
    except InvalidRequestError as error:  # a driver without asyncio
        raise DatabaseUrlUnusable(f"{parsed.drivername}://: {error}") from error
    except OSError as error:  # the SQLite file's folder
        raise DatabaseUrlUnusable(
            f"cannot make the folder of {parsed.database}: {error.strerror or error}"
        ) from error
    return url


def parsed_url(url: str) -> URL:
    """The URL as SQLAlchemy reads it; `ArgumentError` for one it cannot read at all."""
    try:
        return make_url(url)
    except ValueError:  # a port that is not a number; its text may quote the URL's password
        raise DatabaseUrlUnusable("cannot be read: its port is not a number") from None


def shown_database_url() -> str:
    """DATABASE_URL with its password hidden: what an error line may show of it."""
    url = LedgerSettings().database_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "DATABASE_URL"


def upgrade_schema(url: str) -> None:
    """Bring the ledger at `url` to the latest schema. A ledger at a revision this release does not know (a
    newer release migrated it) is the URL's failure: this release cannot use that ledger."""
    try:
        asyncio.run(upgrade_url(url))
    except CommandError as error:
        if not str(error).startswith("Can't locate revision"):
            raise
        raise DatabaseUrlUnusable(
            f"the ledger there is at a revision this release does not know ({error})"
        ) from error
