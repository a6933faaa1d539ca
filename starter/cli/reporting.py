"""How a command fails: one `error: <code>: <message>` line on stderr and an exit code a script can branch
on, never a traceback for a failure the command expects; and the one way a command opens the desk, with
its failures reported so.

The code and the message come from the table the API answers from too (`starter.desk.failures`), so a
refusal reads the same in both. The CLI adds only what the table cannot know: which address it tried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from temporalio.service import RPCError, RPCStatusCode

from ledger.database_url import checked_database_url, shown_database_url
from starter.desk import ComplaintDesk, open_desk
from starter.desk.failures import Failure, failure_of
from starter.desk.settings import TemporalSettings, policy_in_force

T = TypeVar("T")

TEMPORAL_UNAVAILABLE = "temporal_unavailable"
LEDGER_UNAVAILABLE = "ledger_unavailable"
"""The shared table's codes for a service that does not answer, to which the CLI adds where it looked."""

REFUSED = 1
"""The desk said no (a policy refusal, an unknown id) or could not be reached."""
USAGE = 2
"""The command line or the settings are wrong: the same exit code click uses for usage errors."""


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr and a non-zero exit: what a person or a script needs, without a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_with(failure: Failure, context: str = "") -> NoReturn:
    """A failure of the shared table as one line, `code: message (context)`: exit 2 for the caller's own
    setup (`usage`), 1 for everything else."""
    where = f" ({context})" if context else ""
    fail(f"{failure.code}: {failure.message}{where}", USAGE if failure.usage else REFUSED)


def validation_message(error: ValidationError) -> str:
    """A pydantic error worded as the shared table words it (`field: message; ...`), for a usage error the
    CLI reports with its own prefix (an evidence file, say)."""
    failure = failure_of(error)
    assert failure is not None  # the table answers every ValidationError
    return failure.message


def temporal_address() -> str:
    """The address the desk dialled, as the person running the command set it."""
    try:
        return f"TEMPORAL_ADDRESS={TemporalSettings().address}"
    except ValidationError:
        return "TEMPORAL_ADDRESS"


def temporal_context(error: Exception) -> str:
    """Where Temporal was sought, and what the server said when it answered with something other than
    "unavailable" (a namespace it does not know, say)."""
    if isinstance(error, RPCError) and error.status is not RPCStatusCode.UNAVAILABLE:
        return f"{temporal_address()}: {error.message}"
    return temporal_address()


def as_the_table_knows_it(error: Exception) -> Exception:
    """`error`, or the exception the shared table knows for the same situation.

    temporalio reports a server it cannot reach at connect time as a bare RuntimeError ("Failed client
    connect: ..."), which no table can tell from any other RuntimeError; a server that goes away during a
    call raises RPCError UNAVAILABLE, which the table answers with `temporal_unavailable`. The CLI takes the
    first for the second.
    """
    if isinstance(error, RuntimeError) and str(error).startswith("Failed client connect"):
        return RPCError(str(error), RPCStatusCode.UNAVAILABLE, b"")
    return error


def ledger_context(error: Exception) -> str:
    """Which database did not answer (its password hidden), and what its driver said."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    return f"DATABASE_URL={shown_database_url()}: {cause}"


def context_of(failure: Failure, error: Exception) -> str:
    """What the CLI knows beside the table's sentence: where it looked for the service that failed."""
    if failure.code == TEMPORAL_UNAVAILABLE:
        return temporal_context(error)
    if failure.code == LEDGER_UNAVAILABLE:
        return ledger_context(error)
    return ""


@contextmanager
def reported() -> Iterator[None]:
    """Turn the failures a command expects into one line and an exit code; anything the table does not
    know is a bug and keeps its trace."""
    try:
        yield
    except typer.Exit:
        raise  # `fail` inside the block has already said why
    except Exception as error:
        known = as_the_table_knows_it(error)
        failure = failure_of(known)
        if failure is None:
            raise
        fail_with(failure, context_of(failure, known))


def with_desk(work: Callable[[ComplaintDesk], Awaitable[T]]) -> T:
    """Open a desk on the environment's settings, do one thing with it, close it; failures reported.
    DATABASE_URL is checked before Temporal is dialled, so a wrong one is said first and plainly."""

    async def _run() -> T:
        async with open_desk(policy=policy_in_force()) as desk:
            return await work(desk)

    with reported():
        checked_database_url()
        return asyncio.run(_run())
