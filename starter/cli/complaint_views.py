"""What `refund-desk complaints ...` prints: the line an action answers with, the list, and the facts and
the audit trail (R16) that `show` prints. Each fact is built by a function of its own, so `show` reads as
the list of what a complaint has to say.

The list and the audit trail are tables where a table fits the terminal without breaking a word; in a
narrower one (80 columns cannot hold a complaint id beside five other columns), each row is a block of
its own, its text wrapped between words."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text

from policy.complaint import ComplaintState
from policy.evidence import EvidenceFile
from policy.models import ComplaintEvent, ComplaintKind
from policy.reports import ReportedAction
from starter.cli.formatting import (
    NO_VALUE,
    Fact,
    console,
    detail_text,
    facts_grid,
    fits,
    money,
    plain,
    size,
    status_text,
    time_left,
    unbroken,
    when,
)
from starter.desk import RevealedCredentials

INDENT = (0, 0, 0, 2)
"""A block's lines under its first: two columns in."""


def print_changed(state: ComplaintState) -> None:
    """What an action did: the complaint's new status, and the clock if one still runs."""
    line = Text.assemble(f"{state.complaint_id}: ", status_text(state.status))
    left = time_left(state.deadline, datetime.now(UTC), state.status)
    if left != NO_VALUE:
        line.append(f" (deadline {when(state.deadline)}, {left})")
    console().print(line)


def print_reported(complaint_id: str, action: ReportedAction, report_id: str) -> None:
    """A report sent: its id, and where to see what became of it once a worker takes it."""
    console().print(plain(f"reported {action.value} on {complaint_id} as {report_id}"))
    console().print(plain(f"read it: refund-desk complaints show {complaint_id}"))


def print_complaints(found: list[ComplaintState], now: datetime) -> None:
    """The list as a table when it fits, else one block per complaint."""
    out = console()
    table = complaints_table(found, now)
    if fits(table, out):
        out.print(table)
        return
    for state in found:
        out.print(Text.assemble((state.complaint_id, "bold"), "  ", status_text(state.status)))
        out.print(Padding(plain(complaint_summary(state, now)), INDENT))


def complaints_table(found: list[ComplaintState], now: datetime) -> Table:
    """One row per complaint: who, what, where it stands, and how long support has left."""
    # ids and codes are copied whole; only the deadline wraps, its date over its time
    table = Table(
        Column("id", no_wrap=True),
        Column("customer", no_wrap=True),
        Column("kind", no_wrap=True),
        Column("status", no_wrap=True),
        Column("deadline (UTC)"),
        Column("time left", no_wrap=True),
    )
    for state in found:
        table.add_row(
            plain(state.complaint_id),
            plain(state.customer_id),
            plain(state.kind.value),
            status_text(state.status),
            plain(when(state.deadline).removesuffix(" UTC")),
            plain(time_left(state.deadline, now, state.status)),
        )
    return unbroken(table)


def complaint_summary(state: ComplaintState, now: datetime) -> str:
    """A complaint's row without its id and status, its values apart by two spaces as a table's columns
    are (no punctuation glued to an id that is copied): the block's second line."""
    parts = [state.customer_id, state.kind.value]
    if state.deadline is not None:
        parts.append(f"deadline {when(state.deadline)}")
    left = time_left(state.deadline, now, state.status)
    if left != NO_VALUE:
        parts.append(f"time left {left}")
    return "  ".join(parts)


def print_complaint(state: ComplaintState, now: datetime) -> None:
    """The complaint's facts, then its events: a table when it fits, else one block per event."""
    out = console()
    out.print(facts_grid(complaint_facts(state, now)))
    table = events_table(state.events)
    if fits(table, out):
        out.print(table)
        return
    out.print(Text("events", style="italic"), justify="center")
    for event in state.events:
        out.print(event_block(event))


def complaint_facts(state: ComplaintState, now: datetime) -> list[Fact]:
    """Every fact `show` prints, in order; the ones a complaint does not have yet are left out."""
    return [
        *filing_facts(state, now),
        *evidence_facts(state),
        *review_facts(state),
        *access_facts(state),
        *([("escalated", when(state.escalated_at))] if state.escalated_at is not None else []),
        *remedy_facts(state),
        *resolution_facts(state),
    ]


def filing_facts(state: ComplaintState, now: datetime) -> list[Fact]:
    """What was filed, about which order, by whom, and the clock it runs on."""
    # A defect's deadline is the rectification deadline (R7, moved by R10); a claim's is its review's.
    deadline = "deadline" if state.kind is ComplaintKind.MAJOR_DEFECT else "review deadline"
    product = state.order.product
    return [
        ("complaint", state.complaint_id),
        ("kind", state.kind.value),
        ("status", status_text(state.status)),
        ("order", f"{state.order.order_id} ({product.name}, {product.sku})"),
        ("customer", state.customer_id),
        ("amount", money(state.order.price)),
        ("filed", f"{when(state.created_at)} by {state.filed_by}"),
        (deadline, f"{when(state.deadline)} ({time_left(state.deadline, now, state.status)})"),
        ("description", state.description),
    ]


def evidence_facts(state: ComplaintState) -> list[Fact]:
    """One line per evidence file, labelled once, with the ref that `complaints evidence` opens it by."""
    return [
        (
            "evidence" if number == 0 else "",
            f"{item.name} ({item.content_type}, {size(item.size)}), ref {item.ref}",
        )
        for number, item in enumerate(state.evidence)
    ]


def review_facts(state: ComplaintState) -> list[Fact]:
    """Support's decision (R8; R5, R6), its reason and note."""
    review = state.review
    if review is None:
        return []
    reason = f" ({review.reason_code.value})" if review.reason_code is not None else ""
    note = f": {review.note}" if review.note else ""
    return [("review", f"{review.decision.value}{reason} by {review.by} at {when(review.at)}{note}")]


def access_facts(state: ComplaintState) -> list[Fact]:
    """The latest access request (R9) and the customer's answer; never the credentials themselves."""
    access = state.access
    if access is None:
        return []
    if access.granted is None:
        answer = f"awaiting the customer until {when(access.answer_due)}"
    else:
        answer = f"{'granted' if access.granted else 'refused'} at {when(access.answered_at)}"
    return [("access request", f"#{access.number} {access.scope}: {access.reason}; {answer}")]


def remedy_facts(state: ComplaintState) -> list[Fact]:
    """A replacement support offered (R12) and the customer's choice between it and a refund."""
    facts: list[Fact] = []
    if state.replacement_offer is not None:
        offer = state.replacement_offer
        value = f"{offer.value.amount} {offer.value.currency}"
        facts.append(("replacement offer", f"{offer.name} ({offer.sku}), {value}"))
    if state.remedy_choice is not None or state.remedy_choice_due is not None:
        choice = state.remedy_choice.value if state.remedy_choice is not None else "not chosen"
        due = f" (due {when(state.remedy_choice_due)})" if state.remedy_choice_due is not None else ""
        facts.append(("remedy choice", choice + due))
    return facts


def resolution_facts(state: ComplaintState) -> list[Fact]:
    """How the complaint ended: the outcome, its reason, the refund or the replacement."""
    resolution = state.resolution
    if resolution is None:
        return []
    outcome = resolution.outcome.value
    if resolution.reason_code:
        outcome += f" ({resolution.reason_code})"
    if resolution.refund is not None:
        outcome += f", {money(resolution.refund.amount)} at {when(resolution.refund.issued_at)}"
    if resolution.replacement is not None:
        outcome += f", replaced by {resolution.replacement.name} ({resolution.replacement.sku})"
    return [("resolution", outcome)]


def events_table(events: list[ComplaintEvent]) -> Table:
    """The audit trail (R16): every event, who caused it, and what it recorded."""
    # the number, the actor and the type are read and copied whole; the time and the detail wrap
    table = Table(
        Column("seq", no_wrap=True),
        Column("at"),
        Column("actor", no_wrap=True),
        Column("type", no_wrap=True),
        Column("detail"),
        title="events",
    )
    for event in events:
        table.add_row(
            plain(event.seq),
            plain(when(event.at)),
            plain(event.actor),
            plain(event.type),
            plain(detail_text(event.detail)),
        )
    return unbroken(table)


def event_block(event: ComplaintEvent) -> Table:
    """One event where the table does not fit: its number, then what happened and who did it, with what it
    recorded under that."""
    block = Table.grid(padding=(0, 1))
    block.add_column(justify="right", no_wrap=True)
    block.add_column(overflow="fold")
    happened = f"{when(event.at)}  {event.type} by {event.actor}"
    detail = detail_text(event.detail)
    block.add_row(plain(event.seq), plain(f"{happened}\n{detail}" if detail else happened))
    return block


def print_saved(file: EvidenceFile, path: Path) -> None:
    """What `complaints evidence` saved, and its SHA-256, which it was checked against (R6)."""
    line = f"saved {file.name} ({file.content_type}, {size(len(file.data))}) to {path}; sha256 {file.sha256}"
    console().print(plain(line))


def print_credentials(revealed: RevealedCredentials) -> None:
    """R9: the credentials, one a line, each value whole (the terminal wraps a long secret, the printer never
    breaks it, so it copies as it is); then the audit trail's event that recorded the reveal."""
    out = console()
    credentials = revealed.credentials
    facts = [
        ("host", credentials.host),
        ("username", credentials.username),
        ("secret", credentials.secret.get_secret_value()),
    ]
    if credentials.notes:
        facts.append(("notes", credentials.notes))
    for label, value in facts:
        out.print(Text.assemble((f"{label:<8}", "bold"), "  ", value), soft_wrap=True)
    event = revealed.recorded
    out.print(
        plain(f"recorded as event {event.seq}, {event.type} by {event.actor} at {when(event.at)}"),
        soft_wrap=True,
    )
