"""`refund-desk`: run the worker and the API, migrate the ledger, mint development tokens, and support's
complaint commands.

Each complaint command is one call on the desk of `starter.client`, the module the HTTP API uses too, so the
CLI refuses exactly what the API and the workflow refuse: it only turns arguments into the policy's models
and the resulting state (or refusal) into text. Expected failures print one `error: ...` line to stderr and
exit 1 (the desk said no, or could not be reached) or 2 (the command or the settings are wrong); only a bug
shows a traceback.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from temporalio.service import RPCError, RPCStatusCode

from ledger.migrate import upgrade_url
from ledger.settings import LedgerSettings
from ledger.vault import VaultError
from policy.complaint import ComplaintState, Review
from policy.models import (
    Actor,
    ComplaintKind,
    ComplaintStatus,
    DefectRejection,
    Money,
    ReviewDecision,
    Role,
    canonical_amount,
)
from policy.refusals import PolicyRefusal
from policy.settings import Duration
from starter.client import ComplaintDesk, ComplaintNotFound, ComplaintUnresponsive, OrderNotFound, open_desk
from starter.settings import ApiSettings, SettingsError, TemporalSettings

T = TypeVar("T")

REFUSED = 1
"""The desk said no (a policy refusal, an unknown id) or could not be reached."""
USAGE = 2
"""The command line or the settings are wrong: the same exit code click uses for usage errors."""

OPERATOR_ENV = "REFUND_DESK_OPERATOR"

app = typer.Typer(
    name="refund-desk",
    help="Refund Desk: a shop's return policy run as Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
complaints = typer.Typer(
    help="Support's view of complaints: list, show, review, request access, fix, offer a replacement.",
    no_args_is_help=True,
)
app.add_typer(complaints, name="complaints")


# ---------------------------------------------------------------------------------------- formatting


def time_left(deadline: datetime | None, now: datetime, status: ComplaintStatus) -> str:
    """How long support still has to rectify, to the coarsest two units ("2d 3h", "3h 5m", "4m", "<1m").

    "—" when there is no clock (a final complaint, or no deadline), "paused" while an access request waits
    for the customer (R10 stops the clock), "overdue" once the deadline has passed.
    """
    if deadline is None or status.is_final:
        return "—"
    if status is ComplaintStatus.AWAITING_ACCESS:
        return "paused"
    left = deadline - now
    if left <= timedelta(0):
        return "overdue"
    minutes = int(left.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else "<1m"


def when(moment: datetime | None) -> str:
    """A time in UTC to the second (short test windows pass in seconds), the same for everyone."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def money(value: Money) -> str:
    """`50.00 EUR`: the ledger keeps four decimal places, people read two unless more are used."""
    return f"{canonical_amount(value.amount):f} {value.currency}"


PIPE_WIDTH = 1_000


def _console() -> Console:
    """A console made per command, so it sees the stream and width of this invocation (tests swap them).

    Into a pipe (and no COLUMNS) rows are printed whole rather than squeezed into a guessed 80 columns, so
    that `refund-desk complaints list | grep ...` finds ids and statuses unbroken.
    """
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def _text(value: object) -> Text:
    """Plain text: ids, notes and reasons are data, never rich markup."""
    return Text(str(value))


def _validation_summary(error: ValidationError) -> str:
    """A pydantic error on one line: `field: message; field: message`."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item.get("loc", ()))
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)


# -------------------------------------------------------------------------------------------- errors


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr and a non-zero exit: what a person or a script needs, without a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


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
    except OrderNotFound as missing:
        fail(f"no order {missing}", REFUSED)
    except SettingsError as error:
        fail(str(error), USAGE)
    except VaultError as error:
        fail(f"vault keys: {error}", USAGE)
    except ValidationError as error:
        fail(_validation_summary(error), USAGE)
    except ArgumentError as error:
        fail(f"DATABASE_URL: {error}", USAGE)
    except ComplaintUnresponsive:
        fail("the complaint did not answer in time (is a worker running?); read it before retrying", REFUSED)
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


def _with_desk(work: Callable[[ComplaintDesk], Awaitable[T]]) -> T:
    """Open a desk on the environment's settings, do one thing with it, close it; failures reported."""

    async def _run() -> T:
        async with open_desk() as desk:
            return await work(desk)

    with reported():
        return asyncio.run(_run())


def _operator(given: str | None) -> Actor:
    """Support acting under the name given, else REFUND_DESK_OPERATOR (read by the option), else the OS
    user: every action is recorded with who took it (R16)."""
    name = given
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            fail(f"who is acting? pass --as NAME or set {OPERATOR_ENV}", USAGE)
    with reported():
        return Actor(role=Role.SUPPORT, id=name)


def _changed(state: ComplaintState) -> None:
    """What an action did: the complaint's new status, and the clock if one still runs."""
    line = f"{state.complaint_id}: {state.status.value}"
    left = time_left(state.deadline, datetime.now(UTC), state.status)
    if left != "—":
        line += f" (deadline {when(state.deadline)}, {left})"
    _console().print(_text(line))


# ------------------------------------------------------------------------------------------ commands


class LogLevel(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn's log level.")] = LogLevel.INFO,
) -> None:
    """Serve the HTTP API (API.md) with uvicorn until interrupted."""
    import uvicorn

    from starter.api import create_app  # FastAPI is only loaded by the command that serves it

    with reported():
        application = create_app()  # refuses a missing JWT secret before binding the port
    uvicorn.run(application, host=host, port=port, log_level=log_level.value)


@app.command()
def worker() -> None:
    """Run the worker (every workflow and activity) until SIGINT or SIGTERM, then finish in-flight tasks."""
    import worker as worker_process

    with reported():
        worker_process.main()


@app.command()
def migrate() -> None:
    """Create the ledger schema, or bring it to the latest revision, at DATABASE_URL."""
    with reported():
        url = LedgerSettings().database_url
        asyncio.run(upgrade_url(url))
        where = make_url(url).render_as_string(hide_password=True)
    _console().print(_text(f"ledger schema is at head ({where})"))


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="backend, support or customer (system is the desk itself).")],
    sub: Annotated[str, typer.Option(help="Who the token is for: the caller's id.")],
    ttl: Annotated[
        str, typer.Option(help="How long it is valid: seconds, or ISO-8601 such as PT30M or P1D.")
    ] = "3600",
) -> None:
    """Print a bearer token signed with the configured secret (REFUND_DESK_JWT_SECRET): for development."""
    from starter.auth import mint_token

    try:
        lifetime = TypeAdapter(Duration).validate_python(ttl)
    except ValidationError:
        fail(f"--ttl {ttl!r} is not a duration: give seconds or ISO-8601 (PT30M, P1D)", USAGE)
    with reported():
        secret = ApiSettings().secret()
        try:
            minted = mint_token(secret, role, sub, lifetime)
        except ValidationError:
            raise  # a sub the API would refuse: reported as such
        except ValueError as refused:  # a role that gets no tokens
            fail(str(refused), USAGE)
    typer.echo(minted)


# ------------------------------------------------------------------------------------- complaints


Operator = Annotated[
    str | None,
    typer.Option(
        "--as",
        "--by",
        envvar=OPERATOR_ENV,
        show_envvar=True,
        help="Support's id to act as; defaults to the OS user.",
    ),
]
ComplaintId = Annotated[str, typer.Argument(help="The complaint's id.", show_default=False)]
Note = Annotated[str, typer.Option(help="A note for the audit trail.")]


@complaints.command("list")
def list_complaints(
    status: Annotated[ComplaintStatus | None, typer.Option(help="Only this status.")] = None,
    kind: Annotated[ComplaintKind | None, typer.Option(help="Only this kind.")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer's.")] = None,
    order: Annotated[str | None, typer.Option(help="Only this order's.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1, max=500)] = 50,
) -> None:
    """Complaints newest first, with how long support has left on each."""
    found = _with_desk(
        lambda desk: desk.list_complaints(
            status=status, kind=kind, customer_id=customer, order_id=order, limit=limit
        )
    )
    console = _console()
    if not found:
        console.print("no complaints")
        return
    longest = max(len(state.complaint_id) for state in found)
    table = Table("id", "customer", "kind", "status", "deadline (UTC)", "time left")
    for column in table.columns[1:]:
        column.overflow = "fold"  # a narrow terminal folds a value, never cuts it short
    table.columns[0].no_wrap = True
    table.columns[0].min_width = longest  # an id that wraps or is cut can no longer be copied
    now = datetime.now(UTC)
    for state in found:
        table.add_row(
            _text(state.complaint_id),
            _text(state.customer_id),
            _text(state.kind.value),
            _text(state.status.value),
            _text(when(state.deadline).removesuffix(" UTC")),
            _text(time_left(state.deadline, now, state.status)),
        )
    console.print(table)


@complaints.command()
def show(complaint_id: ComplaintId) -> None:
    """The complaint as it stands and its audit trail (R16). Credentials never appear, only whether access
    was granted."""
    state = _with_desk(lambda desk: desk.get(complaint_id))
    now = datetime.now(UTC)
    facts: list[tuple[str, str]] = [
        ("complaint", state.complaint_id),
        ("kind", state.kind.value),
        ("status", state.status.value),
        ("order", f"{state.order.order_id} ({state.order.product.name}, {state.order.product.sku})"),
        ("customer", state.customer_id),
        ("amount", money(state.order.price)),
        ("filed", f"{when(state.created_at)} by {state.filed_by}"),
        ("deadline", f"{when(state.deadline)} ({time_left(state.deadline, now, state.status)})"),
        ("description", state.description),
    ]
    if state.review is not None:
        review = state.review
        reason = f" ({review.reason_code.value})" if review.reason_code is not None else ""
        note = f": {review.note}" if review.note else ""
        facts.append(("review", f"{review.decision.value}{reason} by {review.by} at {when(review.at)}{note}"))
    if state.access is not None:
        access = state.access
        if access.granted is None:
            answer = f"awaiting the customer until {when(access.answer_due)}"
        else:
            answer = f"{'granted' if access.granted else 'refused'} at {when(access.answered_at)}"
        facts.append(("access request", f"#{access.number} {access.scope}: {access.reason}; {answer}"))
    if state.escalated_at is not None:
        facts.append(("escalated", when(state.escalated_at)))
    if state.replacement_offer is not None:
        offer = state.replacement_offer
        facts.append(
            ("replacement offer", f"{offer.name} ({offer.sku}), {offer.value.amount} {offer.value.currency}")
        )
    if state.remedy_choice is not None or state.remedy_choice_due is not None:
        choice = state.remedy_choice.value if state.remedy_choice is not None else "not chosen"
        due = f" (due {when(state.remedy_choice_due)})" if state.remedy_choice_due is not None else ""
        facts.append(("remedy choice", choice + due))
    if state.resolution is not None:
        resolution = state.resolution
        outcome = resolution.outcome.value
        if resolution.reason_code:
            outcome += f" ({resolution.reason_code})"
        if resolution.refund is not None:
            refund = resolution.refund
            outcome += f", {money(refund.amount)} at {when(refund.issued_at)}"
        if resolution.replacement is not None:
            outcome += f", replaced by {resolution.replacement.name} ({resolution.replacement.sku})"
        facts.append(("resolution", outcome))

    console = _console()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in facts:
        grid.add_row(_text(label), _text(value))
    console.print(grid)

    events = Table("seq", "at", "actor", "type", "detail", title="events")
    for event in state.events:
        detail = ", ".join(f"{key}={_detail(value)}" for key, value in event.detail.items())
        events.add_row(
            _text(event.seq), _text(when(event.at)), _text(event.actor), _text(event.type), _text(detail)
        )
    console.print(events)


def _detail(value: Any) -> str:
    """An event detail value: ISO times as `when` shows them, everything else as written."""
    if isinstance(value, str):
        try:
            return when(datetime.fromisoformat(value))
        except ValueError:
            return value
    return str(value)


@complaints.command()
def review(
    complaint_id: ComplaintId,
    approve: Annotated[
        bool | None, typer.Option("--approve/--reject", help="Approve the deficiency, or reject it (R8).")
    ] = None,
    reason: Annotated[DefectRejection | None, typer.Option(help="Why it is rejected (R8).")] = None,
    note: Note = "",
    operator: Operator = None,
) -> None:
    """R8: approve the deficiency (the complaint moves to rectifying), or reject it with a reason."""
    if approve is None:
        fail("say --approve or --reject --reason CODE", USAGE)
    if not approve and reason is None:
        codes = ", ".join(code.value for code in DefectRejection)
        fail(f"a rejection needs --reason, one of: {codes}", USAGE)
    if approve and reason is not None:
        fail("an approval takes no --reason", USAGE)
    decision = Review(
        actor=_operator(operator),
        decision=ReviewDecision.APPROVE if approve else ReviewDecision.REJECT,
        reason_code=reason,
        note=note,
    )
    _changed(_with_desk(lambda desk: desk.review(complaint_id, decision)))


@complaints.command("request-access")
def request_access(
    complaint_id: ComplaintId,
    scope: Annotated[str, typer.Option(help="What access is needed, e.g. 'SSH to the web host'.")],
    reason: Annotated[str, typer.Option(help="Why, for the customer.")],
    operator: Operator = None,
) -> None:
    """R9: ask the customer for temporary access to their server; the clock pauses meanwhile (R10)."""
    actor = _operator(operator)
    _changed(_with_desk(lambda desk: desk.request_access(complaint_id, actor, scope, reason)))


@complaints.command()
def fix(complaint_id: ComplaintId, note: Note = "", operator: Operator = None) -> None:
    """R11: the defect is rectified before the deadline; the complaint ends with no refund."""
    actor = _operator(operator)
    _changed(_with_desk(lambda desk: desk.mark_fixed(complaint_id, actor, note)))


@complaints.command("offer-replacement")
def offer_replacement(
    complaint_id: ComplaintId,
    sku: Annotated[str, typer.Option(help="The replacement product's SKU.")],
    name: Annotated[str, typer.Option(help="The replacement product's name.")],
    value: Annotated[str, typer.Option(help="What it is worth, e.g. 12.50 (exact, never a float).")],
    currency: Annotated[str | None, typer.Option(help="Defaults to the order's currency.")] = None,
    operator: Operator = None,
) -> None:
    """R12: offer another product of around the order's value (within the policy's tolerance)."""
    actor = _operator(operator)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        fail(f"--value {value!r} is not an amount", USAGE)
    if not amount.is_finite():
        fail(f"--value {value!r} is not an amount", USAGE)

    async def _offer(desk: ComplaintDesk) -> ComplaintState:
        offer = await desk.replacement_offer(complaint_id, sku, name, amount, currency)
        return await desk.offer_replacement(complaint_id, actor, offer)

    _changed(_with_desk(_offer))


def main() -> None:
    """The `refund-desk` entry point.

    It ends the process with `os._exit` once the command is done and its output flushed: the Temporal
    client's native threads can outlive the event loop, and a short-lived process that lets the interpreter
    tear down under them may abort with "PyGILState_Release: thread state ... must be current"
    (temporalio/sdk-python#300), turning a clean exit (or a one-line error) into a core dump.
    """
    code = 0
    try:
        app(prog_name="refund-desk")
    except SystemExit as done:
        if isinstance(done.code, str):
            typer.echo(done.code, err=True)
            code = 1
        else:
            code = done.code or 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
