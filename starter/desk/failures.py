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
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from temporalio.service import RPCError

from ledger.keyring import KeyringError
from ledger.repository import OrderConflict
from ledger.vault import VaultError
from policy import refusals
from policy.refusals import PolicyRefusal
from starter.desk.complaints import EvidenceNotFound
from starter.desk.errors import (
    ActivationNotFound,
    ActivationUnresponsive,
    ComplaintNotFound,
    OrderNotFound,
    Unresponsive,
)
from starter.desk.settings import SettingsError
from starter.desk.validation import one_line


@dataclass(frozen=True)
class Failure:
    code: str
    status: int
    message: str
    usage: bool = False


@dataclass(frozen=True)
class Entry:
    """One row of the table: an exception type, the code and status it answers with, and its sentence."""

    kind: type[Exception]
    code: str
    status: int
    message: Callable[[Any], str]
    usage: bool = False
    when: Callable[[Any], bool] = lambda _: True
    """A further test of the exception, where its type alone does not tell (a missing table)."""


CONFLICTS = frozenset(
    {
        refusals.COMPLAINT_ALREADY_OPEN,
        refusals.INVALID_STATE,
        refusals.REMEDY_BEING_ISSUED,
        refusals.ACTIVATION_CONFLICT,
        refusals.CREDENTIALS_DESTROYED,
        refusals.EVIDENCE_DAMAGED,
    }
)
"""Refusals about the current state answer 409; `forbidden_actor` 403; every other refusal 422."""

REFUSAL_CODES = sorted(
    value for name, value in vars(refusals).items() if name.isupper() and isinstance(value, str)
)
"""Every code a `PolicyRefusal` can carry: the constants of `policy.refusals`."""


def refusal_status(code: str) -> int:
    if code == refusals.FORBIDDEN_ACTOR:
        return 403
    return 409 if code in CONFLICTS else 422


def _silent(what: str) -> str:
    return (
        f"the {what} did not answer in time (is a worker running?); an action sent may still take "
        f"effect, so read the {what} before sending it again"
    )


LEDGER_UNAVAILABLE = "the ledger is unavailable; try again shortly"


def _schema_missing(error: DBAPIError) -> bool:
    """The database answers but has no ledger tables: SQLite's "no such table", PostgreSQL's
    `UndefinedTableError` ("relation ... does not exist")."""
    cause = f"{type(error.orig).__name__}: {error.orig}"
    return "no such table" in cause or "UndefinedTable" in cause


TABLE: list[Entry] = [
    Entry(ComplaintNotFound, "complaint_not_found", 404, lambda e: f"no complaint {e}"),
    Entry(ActivationNotFound, "activation_not_found", 404, lambda e: f"no activation {e}"),
    Entry(OrderNotFound, "order_not_found", 404, lambda e: f"no order {e}"),
    Entry(EvidenceNotFound, "evidence_not_found", 404, lambda e: f"no evidence {e}"),
    Entry(OrderConflict, "order_conflict", 409, str),
    Entry(ActivationUnresponsive, "activation_unresponsive", 503, lambda _: _silent("activation")),
    Entry(Unresponsive, "complaint_unresponsive", 503, lambda _: _silent("complaint")),
    Entry(
        RPCError,
        "temporal_unavailable",
        503,
        lambda _: "Temporal, the workflow service, is unavailable; try again shortly",
    ),
    Entry(
        DBAPIError,
        "ledger_not_migrated",
        500,
        lambda _: "the ledger has no schema yet: run `refund-desk migrate` against this DATABASE_URL",
        usage=True,
        when=_schema_missing,
    ),
    Entry(
        OperationalError, "ledger_unavailable", 503, lambda _: "the ledger is unavailable; try again shortly"
    ),
    Entry(
        InterfaceError, "ledger_unavailable", 503, lambda _: "the ledger is unavailable; try again shortly"
    ),
    Entry(ArgumentError, "database_url_invalid", 500, lambda e: f"DATABASE_URL: {e}", usage=True),
    Entry(SettingsError, "settings_invalid", 500, str, usage=True),
    Entry(VaultError, "vault_keys_invalid", 500, lambda e: f"vault keys: {e}", usage=True),
    Entry(KeyringError, "keys_invalid", 500, lambda e: f"keys: {e}", usage=True),
    Entry(ValidationError, "validation_error", 422, one_line, usage=True),
]
"""After the policy's own refusals (`PolicyRefusal`, whose code is the rule's): most specific first, the
first entry whose exception type matches answers. Only a database that does not answer (SQLAlchemy's
`OperationalError`, `InterfaceError`) is `ledger_unavailable`: any other database error (a constraint, a
type) is a bug, which the table leaves to the caller's catch-all."""

FAILURE_TYPES: tuple[type[Exception], ...] = (PolicyRefusal, *(entry.kind for entry in TABLE))


def failure_of(error: BaseException) -> Failure | None:
    """What to tell the caller about `error`, or None for one the table does not know (a bug)."""
    if isinstance(error, PolicyRefusal):
        return Failure(error.code, refusal_status(error.code), error.message)
    for entry in TABLE:
        if isinstance(error, entry.kind) and entry.when(error):
            return Failure(entry.code, entry.status, entry.message(error), entry.usage)
    return None


def codes_by_status() -> dict[int, list[str]]:
    """Every code the desk can answer with, by HTTP status: what the API's OpenAPI document lists."""
    found: dict[int, set[str]] = {}
    for code in REFUSAL_CODES:
        found.setdefault(refusal_status(code), set()).add(code)
    for entry in TABLE:
        if not entry.usage:
            found.setdefault(entry.status, set()).add(entry.code)
    return {status: sorted(codes) for status, codes in sorted(found.items())}
