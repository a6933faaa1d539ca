"""What `refund-desk complaints ...` prints: the line an action answers with, the list's table, and the facts
and the audit trail (R16) that `show` prints. Each fact is built by a function of its own, so `show` reads
as the list of what a complaint has to say."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from policy.complaint import ComplaintState
from policy.models import ComplaintKind
from starter.cli.formatting import NO_VALUE, console, facts_grid, money, plain, size, time_left, when

Fact = tuple[str, str]


def print_changed(state: ComplaintState) -> None:
    """What an action did: the complaint's new status, and the clock if one still runs."""
    line = f"{state.complaint_id}: {state.status.value}"
    left = time_left(state.deadline, datetime.now(UTC), state.status)
    if left != NO_VALUE:
        line += f" (deadline {when(state.deadline)}, {left})"
    console().print(plain(line))


def complaints_table(found: list[ComplaintState], now: datetime) -> Table:
    """One row per complaint: who, what, where it stands, and how long support has left."""
    longest = max(len(state.complaint_id) for state in found)
    table = Table("id", "customer", "kind", "status", "deadline (UTC)", "time left")
    for column in table.columns[1:]:
        column.overflow = "fold"  # a narrow terminal folds a value, never cuts it short
    table.columns[0].no_wrap = True
    table.columns[0].min_width = longest  # an id that wraps or is cut can no longer be copied
    for state in found:
        table.add_row(
            plain(state.complaint_id),
            plain(state.customer_id),
            plain(state.kind.value),
            plain(state.status.value),
            plain(when(state.deadline).removesuffix(" UTC")),
            plain(time_left(state.deadline, now, state.status)),
        )
    return table


def print_complaint(state: ComplaintState, now: datetime) -> None:
    """The complaint's facts, then its events."""
    out = console()
    out.print(facts_grid(complaint_facts(state, now)))
    out.print(events_table(state))


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
        ("status", state.status.value),
        ("order", f"{state.order.order_id} ({product.name}, {product.sku})"),
        ("customer", state.customer_id),
        ("amount", money(state.order.price)),
        ("filed", f"{when(state.created_at)} by {state.filed_by}"),
        (deadline, f"{when(state.deadline)} ({time_left(state.deadline, now, state.status)})"),
        ("description", state.description),
    ]


def evidence_facts(state: ComplaintState) -> list[Fact]:
    """One line per evidence file, labelled once."""
    return [
        ("evidence" if number == 0 else "", f"{item.name} ({item.content_type}, {size(item.size)})")
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


def events_table(state: ComplaintState) -> Table:
    """The audit trail (R16): every event, who caused it, and what it recorded."""
    events = Table("seq", "at", "actor", "type", "detail", title="events")
    for event in state.events:
        detail = ", ".join(f"{key}={_detail(value)}" for key, value in event.detail.items())
        events.add_row(
            plain(event.seq), plain(when(event.at)), plain(event.actor), plain(event.type), plain(detail)
        )
    return events


def _detail(value: Any) -> str:
    """An event detail value: ISO times as `when` shows them, everything else as written."""
    if isinstance(value, str):
        try:
            return when(datetime.fromisoformat(value))
        except ValueError:
            return value
    return str(value)
