"""`refund-desk`: run the worker and the API, migrate the ledger, mint development tokens, and act on
activations and complaints.

- `refund-desk activations start|show|sms|cancel`: the shop's backend on a rented number (R1, R2): start it
  waiting for its SMS, read it, report the SMS that came, or cancel it (the price goes back once).
- `refund-desk complaints file`: the shop's backend files a complaint of any kind on a customer's behalf,
  with evidence files (R3-R6, R15); `complaints list|show|review|request-access|fix|offer-replacement`:
  support's side, for defects (R8-R12) and for claims about numbers (R5, R6).

Each of these commands is one call on the desk of `starter.desk`, the module the HTTP API uses too, so the
CLI refuses exactly what the API and the workflow refuse: it only turns arguments into the policy's models
and the resulting state (or refusal) into text. Whoever acts is recorded (R16): support or the backend as
named by `--as`/`--operator` or REFUND_DESK_OPERATOR, else the OS user. Expected failures print one
`error: ...` line to stderr and exit 1 (the desk said no, or could not be reached) or 2 (the command, a file
it names or the settings are wrong); only a bug shows a traceback.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import mimetypes
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
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
from policy.activation import ActivationState
from policy.complaint import REJECTION_REASONS, ComplaintState, Review
from policy.evidence import MAX_FILE_BYTES, EvidenceFile
from policy.models import (
    ActivationStatus,
    Actor,
    ClaimRejection,
    ComplaintKind,
    ComplaintStatus,
    DefectRejection,
    Money,
    RejectionReason,
    ReviewDecision,
    Role,
    canonical_amount,
)
from policy.refusals import PolicyRefusal
from policy.settings import Duration
from starter.api.settings import ApiSettings
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

OPERATOR_ENV = "REFUND_DESK_OPERATOR"

app = typer.Typer(
    name="refund-desk",
    help="Refund Desk: a shop's return policy run as Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
complaints = typer.Typer(
    help="Complaints: the backend files them; support lists, shows, reviews, requests access, fixes, "
    "offers a replacement.",
    no_args_is_help=True,
)
app.add_typer(complaints, name="complaints")
activations = typer.Typer(
    help="The shop's backend on a rented number (R1, R2): start it, show it, report its SMS, cancel it.",
    no_args_is_help=True,
)
app.add_typer(activations, name="activations")


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
    return _left(deadline, now)


def _left(deadline: datetime, now: datetime) -> str:
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


def size(count: int) -> str:
    """A file's size as people read it: `812 B`, `3.4 KiB`, `1.2 MiB`."""
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"


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
    except ActivationNotFound as missing:
        fail(f"no activation {missing}", REFUSED)
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


def _with_desk(work: Callable[[ComplaintDesk], Awaitable[T]]) -> T:
    """Open a desk on the environment's settings, do one thing with it, close it; failures reported."""

    async def _run() -> T:
        async with open_desk() as desk:
            return await work(desk)

    with reported():
        return asyncio.run(_run())


def _operator(given: str | None, role: Role = Role.SUPPORT) -> Actor:
    """Support (or the shop's backend, by `role`) acting under the name given, else REFUND_DESK_OPERATOR
    (read by the option), else the OS user: every action is recorded with who took it (R16)."""
    name = given
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            fail(f"who is acting? pass --as NAME or set {OPERATOR_ENV}", USAGE)
    with reported():
        return Actor(role=role, id=name)


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
    from starter.api.auth import mint_token

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
        "--operator",
        envvar=OPERATOR_ENV,
        show_envvar=True,
        help="Support's id to act as; defaults to the OS user.",
    ),
]
BackendOperator = Annotated[
    str | None,
    typer.Option(
        "--operator",
        "--as",
        "--by",
        envvar=OPERATOR_ENV,
        show_envvar=True,
        help="The shop backend's id to act as; defaults to the OS user.",
    ),
]
ComplaintId = Annotated[str, typer.Argument(help="The complaint's id.", show_default=False)]
OrderId = Annotated[str, typer.Argument(help="The order's id.", show_default=False)]
Note = Annotated[str, typer.Option(help="A note for the audit trail.")]


def _evidence(paths: list[Path]) -> list[EvidenceFile]:
    """The files named by --evidence, typed by their extension. One that cannot be read is a usage error;
    whether its type and content are accepted is the policy's to say (`evidence_rejected`)."""
    files = []
    for path in paths:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                fail(f"--evidence {path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", USAGE)
            data = path.read_bytes()
        except OSError as error:
            fail(f"--evidence {path}: {error.strerror or error}", USAGE)
        content_type = mimetypes.guess_type(path.name, strict=False)[0] or "application/octet-stream"
        try:
            files.append(EvidenceFile(name=path.name, content_type=content_type, data=data))
        except ValidationError as error:
            fail(f"--evidence {path}: {_validation_summary(error)}", USAGE)
    return files


@complaints.command("file")
def file_complaint(
    order_id: OrderId,
    kind: Annotated[ComplaintKind, typer.Option(help="What the complaint is about (R5, R6, R7).")],
    description: Annotated[
        str, typer.Option(help="What went wrong, in detail: R4 wants grounded reasons, not a word.")
    ],
    evidence: Annotated[
        list[Path] | None,
        typer.Option(
            help="A file to attach (repeat for several): PNG, JPEG, GIF, WebP, PDF or text, typed by its "
            "extension. invalid_number needs at least one (R6).",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    customer: Annotated[
        str | None, typer.Option(help="Only file if the order is this customer's (a check, not the filer).")
    ] = None,
    operator: BackendOperator = None,
) -> None:
    """The shop's backend files a complaint on a customer's behalf. Intake (R3-R6, R15, the kind fits the
    product, an order refunded already) refuses it with its code and writes nothing."""
    actor = _operator(operator, Role.BACKEND)
    files = _evidence(evidence or [])

    async def _file(desk: ComplaintDesk) -> ComplaintState:
        if customer is not None:
            order = await desk.get_order(order_id, seen_by=actor)
            if order.customer_id != customer:
                raise OrderNotFound(f"{order_id} for customer {customer}")
        return await desk.file_complaint(order_id, kind, description, actor, files)

    state = _with_desk(_file)
    count = len(state.evidence)
    attached = f" with {count} evidence file{'' if count == 1 else 's'}" if count else ""
    _console().print(_text(f"filed {state.kind.value} complaint on order {state.order.order_id}{attached}"))
    _changed(state)


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
    """The complaint as it stands, its evidence and its audit trail (R16). Credentials never appear, only
    whether access was granted."""
    state = _with_desk(lambda desk: desk.get(complaint_id))
    now = datetime.now(UTC)
    # A defect's deadline is the rectification deadline (R7, moved by R10); a claim's is its review's.
    deadline = "deadline" if state.kind is ComplaintKind.MAJOR_DEFECT else "review deadline"
    facts: list[tuple[str, str]] = [
        ("complaint", state.complaint_id),
        ("kind", state.kind.value),
        ("status", state.status.value),
        ("order", f"{state.order.order_id} ({state.order.product.name}, {state.order.product.sku})"),
        ("customer", state.customer_id),
        ("amount", money(state.order.price)),
        ("filed", f"{when(state.created_at)} by {state.filed_by}"),
        (deadline, f"{when(state.deadline)} ({time_left(state.deadline, now, state.status)})"),
        ("description", state.description),
    ]
    for number, evidence in enumerate(state.evidence):
        label = "evidence" if number == 0 else ""
        facts.append((label, f"{evidence.name} ({evidence.content_type}, {size(evidence.size)})"))
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


class ReviewReason(StrEnum):
    """Every reason a rejection may give, as one option type: `RejectionReason` is a union of two enums
    (R8's for a defect, R5/R6's for a claim about a number), which a Typer option cannot take. Which reason
    fits which kind is the desk's and the workflow's to say (`reason_code_not_allowed`)."""

    USER_API_MISUSE = DefectRejection.USER_API_MISUSE.value
    THIRD_PARTY_INCOMPATIBILITY = DefectRejection.THIRD_PARTY_INCOMPATIBILITY.value
    NOT_A_DEFECT = DefectRejection.NOT_A_DEFECT.value
    CONTRADICTS_TERMS = DefectRejection.CONTRADICTS_TERMS.value
    SMS_DELIVERED = ClaimRejection.SMS_DELIVERED.value
    NUMBER_VALID = ClaimRejection.NUMBER_VALID.value
    INSUFFICIENT_EVIDENCE = ClaimRejection.INSUFFICIENT_EVIDENCE.value

    def rejection_reason(self) -> RejectionReason:
        """The policy's own enum member for this code."""
        reason: RejectionReason = TypeAdapter(RejectionReason).validate_python(self.value)
        return reason


def _reasons_by_kind() -> str:
    """`major_defect: user_api_misuse, ... / sms_not_received: sms_delivered, ... / ...`"""
    return " / ".join(
        f"{kind.value}: {', '.join(reason.value for reason in reasons)}"
        for kind, reasons in REJECTION_REASONS.items()
    )


@complaints.command()
def review(
    complaint_id: ComplaintId,
    approve: Annotated[
        bool | None,
        typer.Option(
            "--approve/--reject",
            help="Approve (a defect moves to rectifying, a claim is refunded), or reject with --reason.",
        ),
    ] = None,
    reason: Annotated[
        ReviewReason | None,
        typer.Option(help=f"Why it is rejected, by kind (R8; R5, R6): {_reasons_by_kind()}."),
    ] = None,
    note: Note = "",
    operator: Operator = None,
) -> None:
    """R8: approve the deficiency (the complaint moves to rectifying), or reject it with a reason; R5/R6:
    approve a claim about a number (a full refund), or reject it with a reason."""
    if approve is None:
        fail("say --approve or --reject --reason CODE", USAGE)
    if not approve and reason is None:
        fail(f"a rejection needs --reason, by kind: {_reasons_by_kind()}", USAGE)
    if approve and reason is not None:
        fail("an approval takes no --reason", USAGE)
    decision = Review(
        actor=_operator(operator),
        decision=ReviewDecision.APPROVE if approve else ReviewDecision.REJECT,
        reason_code=None if reason is None else reason.rejection_reason(),
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


# ------------------------------------------------------------------------------------ activations


ActivationId = Annotated[str, typer.Argument(help="The activation's id (act_ORDER).", show_default=False)]


def activation_left(state: ActivationState, now: datetime) -> str:
    """How long the number still waits for its SMS (R1); "—" once completed or canceled, "ending" once the
    wait is over and the cancel (R2) is under way."""
    if state.is_final:
        return "—"
    if state.cancel_requested_at is not None:
        return "ending"
    left = _left(state.expires_at, now)
    return "ending" if left == "overdue" else left


def _refund_text(state: ActivationState) -> str:
    if state.refund is not None:
        return f"{money(state.refund.amount)} at {when(state.refund.issued_at)}"
    if state.refund_refused is not None:
        return f"none ({state.refund_refused})"
    return "—"


def _activation_line(state: ActivationState) -> str:
    """The activation in one line: its status and what it means now."""
    line = f"{state.activation_id}: {state.status.value}"
    if state.status is ActivationStatus.WAITING_FOR_SMS:
        line += f" (expires {when(state.expires_at)}, {activation_left(state, datetime.now(UTC))})"
    elif state.status is ActivationStatus.COMPLETED:
        line += f" (SMS at {when(state.completed_at)}; not refundable)"
    else:
        reason = state.cancel_reason.value if state.cancel_reason is not None else "canceled"
        line += f" ({reason}); refund {_refund_text(state)}"
    return line


@activations.command("start")
def start_activation(
    order_id: OrderId,
    phone: Annotated[
        str, typer.Option(help="The rented number in E.164, e.g. +447700900123.", show_default=False)
    ],
    service: Annotated[
        str, typer.Option(help="The service it receives its code from, e.g. whatsapp.", show_default=False)
    ],
    operator: BackendOperator = None,
) -> None:
    """R1/R2: the order's number starts waiting for its SMS. The same number and service again answers with
    the activation as it is; another number for the order is refused."""
    actor = _operator(operator, Role.BACKEND)
    state, created = _with_desk(lambda desk: desk.start_activation(order_id, phone, service, actor))
    console = _console()
    if created:
        console.print(_text(f"started activation {state.activation_id}"))
    else:
        console.print(_text(f"activation {state.activation_id} already existed: nothing started"))
    console.print(_text(_activation_line(state)))


@activations.command("show")
def show_activation(activation_id: ActivationId, operator: BackendOperator = None) -> None:
    """The activation as it stands: the number, its SMS if one came, its cancel and refund if not."""
    actor = _operator(operator, Role.BACKEND)
    state = _with_desk(lambda desk: desk.get_activation(activation_id, actor))
    order = state.order
    facts: list[tuple[str, str]] = [
        ("activation", state.activation_id),
        ("order", f"{order.order_id} ({order.product.name}, {order.product.sku})"),
        ("customer", state.customer_id),
        ("amount", money(order.price)),
        ("phone", state.phone_number),
        ("service", state.service),
        ("status", state.status.value),
        ("started", f"{when(state.started_at)} by {state.started_by}"),
        ("expires", f"{when(state.expires_at)} ({activation_left(state, datetime.now(UTC))})"),
    ]
    if state.sms_text is not None:
        facts.append(("sms", state.sms_text))
        facts.append(("completed", when(state.completed_at)))
    if state.status is ActivationStatus.CANCELED:
        reason = state.cancel_reason.value if state.cancel_reason is not None else "—"
        by = f" by {state.canceled_by}" if state.canceled_by else ""
        facts.append(("canceled", f"{when(state.canceled_at)}{by} ({reason})"))
        facts.append(("refund", _refund_text(state)))
    elif state.cancel_requested_at is not None:
        by = f" by {state.cancel_requested_by}" if state.cancel_requested_by is not None else ""
        facts.append(("cancel requested", f"{when(state.cancel_requested_at)}{by}"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in facts:
        grid.add_row(_text(label), _text(value))
    _console().print(grid)


@activations.command("sms")
def receive_sms(
    activation_id: ActivationId,
    text: Annotated[str, typer.Argument(help="The SMS the number received.", show_default=False)],
    operator: BackendOperator = None,
) -> None:
    """R1: the number received its SMS; the activation is completed and no longer refundable."""
    actor = _operator(operator, Role.BACKEND)
    state = _with_desk(lambda desk: desk.receive_sms(activation_id, actor, text))
    _console().print(_text(_activation_line(state)))


@activations.command("cancel")
def cancel_activation(activation_id: ActivationId, operator: BackendOperator = None) -> None:
    """R2: give up on the number before an SMS came; the full price goes back to the customer's balance,
    once however often this is run."""
    actor = _operator(operator, Role.BACKEND)
    state = _with_desk(lambda desk: desk.cancel_activation(activation_id, actor))
    _console().print(_text(_activation_line(state)))


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
