"""Money back, once per order (R16): a full refund through the ledger, and the ledger's reasons for
refusing to make an order good a second time, for a workflow to end with rather than fail on."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import LEDGER_CALL, LedgerActivities
    from ledger.records import RefundIssue, RefundSource
    from policy import refusals, rules
    from policy.models import Actor, Order, RefundRecord


REMEDY_REFUSALS = frozenset({refusals.ALREADY_REFUNDED, refusals.ALREADY_REMEDIED})
"""The ledger's refusals to make an order good a second time (R16): its price went back, or it was
replaced, through another source."""


def remedy_refusal(err: ActivityError) -> str | None:
    """The code of a refund or replacement the ledger refused because the order was made good already;
    None for any other failure, which the caller raises."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in REMEDY_REFUSALS:
        return cause.type
    return None


async def refund_full_price(
    source_kind: RefundSource, source_id: str, order: Order, actor: Actor
) -> RefundRecord | None:
    """Return the price paid to the customer's balance, once per source and once per order (R16); None
    when the order was made good another way already."""
    record = await refund_or_refusal(source_kind, source_id, order, actor)
    return None if isinstance(record, str) else record


async def refund_or_refusal(
    source_kind: RefundSource, source_id: str, order: Order, actor: Actor, *, at: datetime | None = None
) -> RefundRecord | str:
    """`refund_full_price`, with the refusal's code (`already_refunded`, `already_remedied`) in place of
    None, for a complaint to end with it."""
    try:
        refund = await workflow.execute_activity_method(
            LedgerActivities.issue_refund,
            RefundIssue(
                source_kind=source_kind,
                source_id=source_id,
                customer_id=order.customer_id,
                order_id=order.order_id,
                amount=rules.full_refund(order),
                actor=str(actor),
                at=at or workflow.now(),
            ),
            **LEDGER_CALL,
        )
    except ActivityError as err:
        code = remedy_refusal(err)
        if code is None:
            raise
        return code
    return RefundRecord(amount=refund.amount, issued_at=refund.issued_at)
