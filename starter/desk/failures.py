"""The one table from what the desk's layers raise to what a caller is told: a stable code, the HTTP status
the API answers with, and a sentence for a person. The API (`starter.api.errors`) and the CLI
(`starter.cli.reporting`) both answer from here, so a refusal reads the same wherever it is met.

A failure marked `usage` is the caller's own setup (a setting, a key, a database URL): the CLI exits 2 for
those, as for a wrong command line, and 1 for everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import ArgumentError, DBAPIError
from temporalio.service import RPCError

from ledger.keyring import KeyringError
from ledger.repository import OrderConflict
from ledger.vault import VaultError
from policy import refusals
from policy.refusals import PolicyRefusal
from starter.desk.errors import (
    ActivationNotFound,
    ActivationUnresponsive,
    ComplaintNotFound,
    OrderNotFound,
    Unresponsive,
)
from starter.desk.settings import SettingsError


@dataclass(frozen=True)
class Failure:
    code: str
    status: int
    message: str
    usage: bool = False


CONFLICTS = frozenset(
    {
        refusals.COMPLAINT_ALREADY_OPEN,
        refusals.INVALID_STATE,
        refusals.REMEDY_BEING_ISSUED,
        refusals.ACTIVATION_CONFLICT,
    }
)
"""Refusals about the current state answer 409; `forbidden_actor` 403; every other refusal 422."""


def _refusal(refusal: PolicyRefusal) -> Failure:
    status = 422
    if refusal.code == refusals.FORBIDDEN_ACTOR:
        status = 403
    elif refusal.code in CONFLICTS:
        status = 409
    return Failure(refusal.code, status, refusal.message)


def _unresponsive(silent: Unresponsive) -> Failure:
    what = "activation" if isinstance(silent, ActivationUnresponsive) else "complaint"
    return Failure(
        f"{what}_unresponsive",
        503,
        f"the {what} did not answer in time (is a worker running?); an action sent may still take "
        f"effect, so read the {what} before sending it again",
    )


def _validation(error: ValidationError) -> Failure:
    """A pydantic error on one line: `field: message; field: message`."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item.get("loc", ()))
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return Failure("validation_error", 422, "; ".join(parts), usage=True)


TEMPORAL_UNAVAILABLE = Failure(
    "temporal_unavailable", 503, "Temporal, the workflow service, is unavailable; try again shortly"
)
LEDGER_UNAVAILABLE = Failure("ledger_unavailable", 503, "the ledger is unavailable; try again shortly")

TABLE: list[tuple[type[Exception], Callable[[Any], Failure]]] = [
    (PolicyRefusal, _refusal),
    (ComplaintNotFound, lambda e: Failure("complaint_not_found", 404, f"no complaint {e}")),
    (ActivationNotFound, lambda e: Failure("activation_not_found", 404, f"no activation {e}")),
    (OrderNotFound, lambda e: Failure("order_not_found", 404, f"no order {e}")),
    (OrderConflict, lambda e: Failure("order_conflict", 409, str(e))),
    (Unresponsive, _unresponsive),
    (RPCError, lambda _: TEMPORAL_UNAVAILABLE),
    (DBAPIError, lambda _: LEDGER_UNAVAILABLE),
    (ArgumentError, lambda e: Failure("database_url_invalid", 500, f"DATABASE_URL: {e}", usage=True)),
    (SettingsError, lambda e: Failure("settings_invalid", 500, str(e), usage=True)),
    (VaultError, lambda e: Failure("vault_keys_invalid", 500, f"vault keys: {e}", usage=True)),
    (KeyringError, lambda e: Failure("keys_invalid", 500, f"keys: {e}", usage=True)),
    (ValidationError, _validation),
]
"""Most specific first: the first entry whose exception type matches answers."""

FAILURE_TYPES: tuple[type[Exception], ...] = tuple(kind for kind, _ in TABLE)


def failure_of(error: BaseException) -> Failure | None:
    """What to tell the caller about `error`, or None for one the table does not know (a bug)."""
    for kind, describe in TABLE:
        if isinstance(error, kind):
            return describe(error)
    return None
