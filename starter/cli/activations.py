"""`refund-desk activations ...`: the shop's backend on a rented number (R1, R2): start it waiting for its
SMS, read it, report the SMS that came, or cancel it (the price goes back once)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.text import Text

from policy.activation import ActivationState
from policy.models import ActivationStatus, Role
from starter.cli.formatting import NO_VALUE, Fact, console, facts_grid, money, plain, status_text, until, when
from starter.cli.options import BackendOperator, OrderId, acting
from starter.cli.reporting import with_desk

activations = typer.Typer(
    help="The shop's backend on a rented number (R1, R2): start it, show it, report its SMS, cancel it.",
    no_args_is_help=True,
)

ActivationId = Annotated[str, typer.Argument(help="The activation's id (act_ORDER).", show_default=False)]


def activation_left(state: ActivationState, now: datetime) -> str:
    """How long the number still waits for its SMS (R1); "—" once completed or canceled, "ending" once the
    wait is over and the cancel (R2) is under way."""
    if state.is_final:
        return NO_VALUE
    if state.cancel_requested_at is not None:
        return "ending"
    left = until(state.expires_at, now)
    return "ending" if left == "overdue" else left


def refund_text(state: ActivationState) -> str:
    """The price given back on a cancel (R2), or why none was."""
    if state.refund is not None:
        return f"{money(state.refund.amount)} at {when(state.refund.issued_at)}"
    if state.refund_refused is not None:
        return f"none ({state.refund_refused})"
    return NO_VALUE


def activation_line(state: ActivationState) -> Text:
    """The activation in one line: its status and what it means now."""
    line = Text.assemble(f"{state.activation_id}: ", status_text(state.status))
    if state.status is ActivationStatus.WAITING_FOR_SMS:
        line.append(f" (expires {when(state.expires_at)}, {activation_left(state, datetime.now(UTC))})")
    elif state.status is ActivationStatus.COMPLETED:
        line.append(f" (SMS at {when(state.completed_at)}; not refundable)")
    else:
        reason = state.cancel_reason.value if state.cancel_reason is not None else "canceled"
        line.append(f" ({reason}); refund {refund_text(state)}")
    return line


def activation_facts(state: ActivationState, now: datetime) -> list[Fact]:
    """Every fact `show` prints: the number and its order, then its SMS or its cancel and refund."""
    order = state.order
    facts: list[Fact] = [
        ("activation", state.activation_id),
        ("order", f"{order.order_id} ({order.product.name}, {order.product.sku})"),
        ("customer", state.customer_id),
        ("amount", money(order.price)),
        ("phone", state.phone_number),
        ("service", state.service),
        ("status", status_text(state.status)),
        ("started", f"{when(state.started_at)} by {state.started_by}"),
        ("expires", f"{when(state.expires_at)} ({activation_left(state, now)})"),
    ]
    if state.sms_text is not None:
        facts.append(("sms", state.sms_text))
        facts.append(("completed", when(state.completed_at)))
    if state.status is ActivationStatus.CANCELED:
        reason = state.cancel_reason.value if state.cancel_reason is not None else NO_VALUE
        by = f" by {state.canceled_by}" if state.canceled_by else ""
        facts.append(("canceled", f"{when(state.canceled_at)}{by} ({reason})"))
        facts.append(("refund", refund_text(state)))
    elif state.cancel_requested_at is not None:
        by = f" by {state.cancel_requested_by}" if state.cancel_requested_by is not None else ""
        facts.append(("cancel requested", f"{when(state.cancel_requested_at)}{by}"))
    return facts


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
    actor = acting(operator, Role.BACKEND)
    state, created = with_desk(lambda desk: desk.start_activation(order_id, phone, service, actor))
    out = console()
    if created:
        out.print(plain(f"started activation {state.activation_id}"))
    else:
        out.print(plain(f"activation {state.activation_id} already existed: nothing started"))
    out.print(activation_line(state))


@activations.command("show")
def show_activation(activation_id: ActivationId, operator: BackendOperator = None) -> None:
    """The activation as it stands: the number, its SMS if one came, its cancel and refund if not."""
    actor = acting(operator, Role.BACKEND)
    state = with_desk(lambda desk: desk.get_activation(activation_id, actor))
    console().print(facts_grid(activation_facts(state, datetime.now(UTC))))


@activations.command("sms")
def receive_sms(
    activation_id: ActivationId,
    text: Annotated[str, typer.Argument(help="The SMS the number received.", show_default=False)],
    operator: BackendOperator = None,
) -> None:
    """R1: the number received its SMS; the activation is completed and no longer refundable."""
    actor = acting(operator, Role.BACKEND)
    state = with_desk(lambda desk: desk.receive_sms(activation_id, actor, text))
    console().print(activation_line(state))


@activations.command("cancel")
def cancel_activation(activation_id: ActivationId, operator: BackendOperator = None) -> None:
    """R2: give up on the number before an SMS came; the full price goes back to the customer's balance,
    once however often this is run."""
    actor = acting(operator, Role.BACKEND)
    state = with_desk(lambda desk: desk.cancel_activation(activation_id, actor))
    console().print(activation_line(state))
