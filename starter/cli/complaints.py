"""`refund-desk complaints ...`: the shop's backend files a complaint of any kind on a customer's behalf,
with evidence files (R3-R6, R15); support lists, shows, reviews, requests access, fixes and offers a
replacement, for defects (R8-R12) and for claims about numbers (R5, R6), saves a complaint's evidence files
(R6) and reveals the server credentials a customer granted (R9).

Each command turns its arguments into the policy's models and makes one desk call; whether the call is
allowed is the desk's and the workflow's to say."""

from __future__ import annotations

import mimetypes
import os
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError

from policy.complaint import REJECTION_REASONS, ComplaintState, Review
from policy.evidence import MAX_FILE_BYTES, EvidenceFile
from policy.models import (
    ClaimRejection,
    ComplaintKind,
    ComplaintStatus,
    DefectRejection,
    RejectionReason,
    ReviewDecision,
    Role,
)
from policy.reports import ReportedAction
from starter.cli.complaint_views import (
    print_changed,
    print_complaint,
    print_complaints,
    print_credentials,
    print_reported,
    print_saved,
)
from starter.cli.formatting import console, plain
from starter.cli.options import BackendOperator, Note, Operator, OrderId, acting
from starter.cli.reporting import USAGE, fail, validation_message, with_desk
from starter.desk import ComplaintDesk, OrderNotFound

complaints = typer.Typer(
    help="Complaints: the backend files them; support lists, shows, reviews, requests access, fixes, "
    "offers a replacement, saves evidence and reveals granted credentials.",
    no_args_is_help=True,
)

ComplaintId = Annotated[str, typer.Argument(help="The complaint's id.", show_default=False)]


def read_evidence(paths: list[Path]) -> list[EvidenceFile]:
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
            fail(f"--evidence {path}: {validation_message(error)}", USAGE)
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
    actor = acting(operator, Role.BACKEND)
    files = read_evidence(evidence or [])

    async def _file(desk: ComplaintDesk) -> ComplaintState:
        if customer is not None:
            order = await desk.get_order(order_id, seen_by=actor)
            if order.customer_id != customer:
                raise OrderNotFound(f"{order_id} for customer {customer}")
        return await desk.file_complaint(order_id, kind, description, actor, files)

    state = with_desk(_file)
    count = len(state.evidence)
    attached = f" with {count} evidence file{'' if count == 1 else 's'}" if count else ""
    console().print(plain(f"filed {state.kind.value} complaint on order {state.order.order_id}{attached}"))
    print_changed(state)


@complaints.command("list")
def list_complaints(
    status: Annotated[ComplaintStatus | None, typer.Option(help="Only this status.")] = None,
    kind: Annotated[ComplaintKind | None, typer.Option(help="Only this kind.")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer's.")] = None,
    order: Annotated[str | None, typer.Option(help="Only this order's.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1, max=500)] = 50,
) -> None:
    """Complaints newest first, with how long support has left on each."""
    found = with_desk(
        lambda desk: desk.list_complaints(
            status=status, kind=kind, customer_id=customer, order_id=order, limit=limit
        )
    )
    if not found:
        console().print("no complaints")
        return
    print_complaints(found, datetime.now(UTC))


@complaints.command()
def show(complaint_id: ComplaintId) -> None:
    """The complaint as it stands, its evidence and its audit trail (R16). Credentials never appear, only
    whether access was granted."""
    state = with_desk(lambda desk: desk.get(complaint_id))
    print_complaint(state, datetime.now(UTC))


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


def reasons_by_kind() -> str:
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
        typer.Option(help=f"Why it is rejected, by kind (R8; R5, R6): {reasons_by_kind()}."),
    ] = None,
    note: Note = "",
    operator: Operator = None,
) -> None:
    """R8: approve the deficiency (the complaint moves to rectifying), or reject it with a reason; R5/R6:
    approve a claim about a number (a full refund), or reject it with a reason."""
    if approve is None:
        fail("say --approve or --reject --reason CODE", USAGE)
    if not approve and reason is None:
        fail(f"a rejection needs --reason, by kind: {reasons_by_kind()}", USAGE)
    if approve and reason is not None:
        fail("an approval takes no --reason", USAGE)
    decision = Review(
        actor=acting(operator),
        decision=ReviewDecision.APPROVE if approve else ReviewDecision.REJECT,
        reason_code=None if reason is None else reason.rejection_reason(),
        note=note,
    )
    print_changed(with_desk(lambda desk: desk.review(complaint_id, decision)))


@complaints.command("request-access")
def request_access(
    complaint_id: ComplaintId,
    scope: Annotated[str, typer.Option(help="What access is needed, e.g. 'SSH to the web host'.")],
    reason: Annotated[str, typer.Option(help="Why, for the customer.")],
    operator: Operator = None,
) -> None:
    """R9: ask the customer for temporary access to their server; the clock pauses meanwhile (R10)."""
    actor = acting(operator)
    print_changed(with_desk(lambda desk: desk.request_access(complaint_id, actor, scope, reason)))


@complaints.command()
def fix(
    complaint_id: ComplaintId,
    note: Note = "",
    asynchronously: Annotated[
        bool,
        typer.Option(
            "--async",
            help="Report the fix and return at once, even while no worker runs (a deployment pipeline's "
            "way): the complaint shows the outcome, or the refusal in its trail, once a worker takes it.",
        ),
    ] = False,
    operator: Operator = None,
) -> None:
    """R11: the defect is rectified before the deadline; the complaint ends with no refund."""
    actor = acting(operator)
    if asynchronously:
        report_id = with_desk(lambda desk: desk.report(complaint_id, actor, ReportedAction.FIXED, note=note))
        print_reported(complaint_id, ReportedAction.FIXED, report_id)
        return
    print_changed(with_desk(lambda desk: desk.mark_fixed(complaint_id, actor, note)))


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
    actor = acting(operator)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        fail(f"--value {value!r} is not an amount", USAGE)
    if not amount.is_finite():
        fail(f"--value {value!r} is not an amount", USAGE)

    async def _offer(desk: ComplaintDesk) -> ComplaintState:
        offer = await desk.replacement_offer(complaint_id, sku, name, amount, currency)
        return await desk.offer_replacement(complaint_id, actor, offer)

    print_changed(with_desk(_offer))


@complaints.command("evidence")
def save_evidence(
    complaint_id: ComplaintId,
    ref: Annotated[str, typer.Argument(help="The file's ref, as `show` lists it: ev_…", show_default=False)],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Where to save it; a folder: under its stored name there.",
            show_default=False,
        ),
    ],
    force: Annotated[bool, typer.Option(help="Overwrite a file that is there already.")] = False,
    operator: Operator = None,
) -> None:
    """R6: save an evidence file as it was filed, checked against the SHA-256 recorded then; a file that no
    longer matches is refused (evidence_damaged) and nothing is written. Saved readable by you alone."""
    actor = acting(operator)
    if not out.is_dir():
        refuse_to_overwrite(out, force)
    found = with_desk(lambda desk: desk.open_evidence(complaint_id, ref, actor))
    path = out / found.name if out.is_dir() else out
    refuse_to_overwrite(path, force)
    write_private(path, found.data, force)
    print_saved(found, path)


def refuse_to_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        fail(f"--out {path}: there is a file there already (--force overwrites it)", USAGE)


def write_private(path: Path, data: bytes, force: bool) -> None:
    """Write `data` to a file only its owner reads (a customer's screenshot is theirs); with `force` over
    one that is there, else only as a new file, so that a file made meanwhile is not overwritten."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
        os.fchmod(descriptor, 0o600)  # a file overwritten keeps its mode otherwise
        with os.fdopen(descriptor, "wb") as written:
            written.write(data)
    except OSError as error:
        fail(f"--out {path}: {error.strerror or error}", USAGE)


@complaints.command("reveal-credentials")
def reveal_credentials(complaint_id: ComplaintId, operator: Operator = None) -> None:
    """R9: print the server credentials the customer granted, while the complaint is open and access is
    granted. Each reveal is recorded in the audit trail (who and when) before the vault is opened; once the
    complaint ends they are gone."""
    actor = acting(operator)
    print_credentials(with_desk(lambda desk: desk.reveal_granted_credentials(complaint_id, actor)))
