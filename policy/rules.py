"""Rule functions: the arithmetic of docs/policy.md, pure and deterministic.

The workflows call these with `workflow.now()`; tests call them with any instant. Each names its rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from policy.models import Money, Order, RemedyChoice, ReplacementOffer
from policy.settings import PolicySnapshot


def sms_wait_ends(started_at: datetime, policy: PolicySnapshot) -> datetime:
    """R1/R2: a rented number waits `sms_wait` for its SMS; then it is canceled and refunded."""
    return started_at + policy.sms_wait


def review_deadline(filed_at: datetime, policy: PolicySnapshot) -> datetime:
    """R5/R6 with R13's duty: a claim unreviewed `review_window` after filing is escalated."""
    return filed_at + policy.review_window


def rectification_deadline(filed_at: datetime, policy: PolicySnapshot, paused: timedelta) -> datetime:
    """R7 + R10: `rectify_window` from the complaint, moved by the time the customer took to answer access."""
    if paused < timedelta(0):
        raise ValueError("a pause cannot be negative")
    return filed_at + policy.rectify_window + paused


def pause_for_access(requested_at: datetime, answered_at: datetime) -> timedelta:
    """R10: the clock stops while an access request waits for the customer; never negative."""
    return max(answered_at - requested_at, timedelta(0))


def access_answer_due(requested_at: datetime, policy: PolicySnapshot) -> datetime:
    """R10: silence past `access_response_window` counts as refusal."""
    return requested_at + policy.access_response_window


def review_reminder_at(deadline: datetime, policy: PolicySnapshot) -> datetime:
    """R13: support is reminded `review_reminder_before` the deadline."""
    return deadline - policy.review_reminder_before


def remedy_choice_due(deadline_passed_at: datetime, policy: PolicySnapshot) -> datetime:
    """R12: with no choice made, the customer has `remedy_choice_window` after the deadline."""
    return deadline_passed_at + policy.remedy_choice_window


DEFAULT_REMEDY = RemedyChoice.REFUND
"""R12: no choice within the window means a full refund."""


def full_refund(order: Order) -> Money:
    """R12 and R2/R5/R6: exactly the price paid, no compensation on top."""
    return order.price


def within_replacement_tolerance(price: Money, value: Money, tolerance: Decimal) -> bool:
    """R12: a replacement of "the same or around the same value": |value - price| <= tolerance * price."""
    if price.currency != value.currency:
        return False
    # In fractions, not Decimals: a product of Decimals is rounded to the context's 28 digits, which a
    # tolerance with many digits and a large price would turn into an offer accepted just beyond it.
    return abs(Fraction(value.amount) - Fraction(price.amount)) <= Fraction(tolerance) * Fraction(
        price.amount
    )


def same_product_again(order: Order) -> ReplacementOffer:
    """R12: unless support offered another product, the replacement is the one bought."""
    return ReplacementOffer(sku=order.product.sku, name=order.product.name, value=order.price)
