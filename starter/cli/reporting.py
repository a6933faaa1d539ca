"""How a command fails: one `error: ...` line on stderr and an exit code a script can branch on, never a
traceback for a failure the command expects; and the one way a command opens the desk, with its failures
reported so."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import ArgumentError, DBAPIError
from temporalio.service import RPCError, RPCStatusCode

from ledger.vault import VaultError
from policy.refusals import PolicyRefusal
from starter.desk import (
    ActivationNotFound,
    ActivationUnresponsive,
    ComplaintDesk,
    ComplaintNotFound,
    OrderNotFound,
    Unresponsive,
    open_desk,
)
from starter.desk.settings import SettingsError, TemporalSettings

T = TypeVar("T")

REFUSED = 1
"""The desk said no (a policy refusal, an unknown id) or could not be reached."""
USAGE = 2
"""The command line or the settings are wrong: the same exit code click uses for usage errors."""


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr and a non-zero exit: what a person or a script needs, without a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def validation_summary(error: ValidationError) -> str:
    """A pydantic error on one line: `field: message; field: message`."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item.get("loc", ()))
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)


def _temporal_address() -> str:
    try:
        return TemporalSettings().address
    except ValidationError:
        return "TEMPORAL_ADDRESS"


@contextmanager
def reported() -> Iterator[None]:
    """Turn the failures a command expects into `fail(...)`; anything else is a bug and keeps its trace."""
    try:
        yield
    except PolicyRefusal as refusal:
        fail(str(refusal), REFUSED)
    except ComplaintNotFound as missing:
        fail(f"no complaint {missing}", REFUSED)
    except ActivationNotFound as missing:
        fail(f"no activation {missing}", REFUSED)
    except OrderNotFound as missing:
        fail(f"no order {missing}", REFUSED)
    except SettingsError as error:
        fail(str(error), USAGE)
    except VaultError as error:
        fail(f"vault keys: {error}", USAGE)
    except ValidationError as error:
        fail(validation_summary(error), USAGE)
    except ArgumentError as error:
        fail(f"DATABASE_URL: {error}", USAGE)
    except Unresponsive as silent:
        what = "activation" if isinstance(silent, ActivationUnresponsive) else "complaint"
        fail(f"the {what} did not answer in time (is a worker running?); read it before retrying", REFUSED)
    except RPCError as error:
        if error.status is RPCStatusCode.UNAVAILABLE:
            fail(f"cannot reach Temporal at {_temporal_address()}", REFUSED)
        fail(f"Temporal: {error.message}", REFUSED)
    except DBAPIError as error:
        fail(f"ledger: {error.orig}", REFUSED)
    except RuntimeError as error:
        if str(error).startswith("Failed client connect"):  # how temporalio reports an unreachable server
            fail(f"cannot reach Temporal at {_temporal_address()}", REFUSED)
        raise


def with_desk(work: Callable[[ComplaintDesk], Awaitable[T]]) -> T:
    """Open a desk on the environment's settings, do one thing with it, close it; failures reported."""

    async def _run() -> T:
        async with open_desk() as desk:
            return await work(desk)

    with reported():
        return asyncio.run(_run())
