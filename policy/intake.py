"""Intake: whether a complaint may be filed at all (R3, R4, R5, R6 and which kind fits which product).

The desk applies these before it writes anything or starts a workflow, and every complaint workflow
applies them again as its first step, so a client that starts a workflow directly cannot skip them.
Each refusal carries the rule's code and a sentence the customer can act on.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from policy import refusals
from policy.models import ActivationStatus, ComplaintKind, Order, ProductKind
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot

PRODUCT_OF_KIND: dict[ComplaintKind, ProductKind] = {
    ComplaintKind.SMS_NOT_RECEIVED: ProductKind.VIRTUAL_NUMBER,
    ComplaintKind.INVALID_NUMBER: ProductKind.VIRTUAL_NUMBER,
    ComplaintKind.MAJOR_DEFECT: ProductKind.SOFTWARE,
}
"""R5 and R6 are about rented numbers, R7-R12 about software: a claim names the product it is about."""

EVIDENCE_NEEDED: frozenset[ComplaintKind] = frozenset({ComplaintKind.INVALID_NUMBER})
"""R6: an invalid-number claim must show it (a screenshot of the 2FA screen, say)."""


def claim_window_closes(order: Order, policy: PolicySnapshot) -> datetime:
    """R3: the last instant a claim about `order` is accepted (the instant itself included)."""
    return order.placed_at + policy.claim_window


BLANK_LOOKING = frozenset("\u115f\u1160\u2800\u303f\u3164\uffa0\U0001d159")
"""Letters and symbols that draw as nothing or as blank space: the Hangul fillers, the braille blank, the
ideographic half fill space and the musical null notehead. Every other invisible code point (the rest of
Unicode's default-ignorables, such as zero-width spaces and joiners, bidi marks, variation selectors, tags)
is a format character, a mark, a control or unassigned, which R4 leaves out by category."""

SEEN_CATEGORIES = frozenset("LNPS")
"""Letters, numbers, punctuation and symbols: the general categories of characters that take a place of
their own on the line. Marks sit on the character before them (a letter with 60 accents is one letter),
separators are whitespace, and "other" is controls, format characters, private use and unassigned."""


def _seen(char: str) -> bool:
    """Whether a reader sees `char` as a character of its own."""
    return unicodedata.category(char)[0] in SEEN_CATEGORIES and char not in BLANK_LOOKING


def meaningful_length(description: str) -> int:
    """R4 counts what a reader sees: the letters, numbers, punctuation and symbols, each with its marks
    counting once, and a run of whitespace between two of them once; padding, and whatever draws as
    nothing or as a blank, not at all.

    The workflow applies this at its start (intake), so it is pure and deterministic: the character
    database is the interpreter's own `unicodedata`, fixed for a given Python version."""
    shown = "".join(char for char in description if char.isspace() or _seen(char))
    return len(" ".join(shown.split()))


def check_claim(
    order: Order,
    kind: ComplaintKind,
    description: str,
    evidence_count: int,
    filed_at: datetime,
    policy: PolicySnapshot,
) -> None:
    """Raise the `PolicyRefusal` of the first intake rule the claim breaks; return if it may be filed."""
    product = PRODUCT_OF_KIND[kind]
    if order.product.kind is not product:
        raise PolicyRefusal(
            refusals.KIND_NOT_FOR_PRODUCT,
            f"a {kind.value} claim is about a {product.value.replace('_', ' ')}; "
            f"order {order.order_id} is for {order.product.kind.value.replace('_', ' ')}",
        )
    closes = claim_window_closes(order, policy)
    if filed_at > closes:
        raise PolicyRefusal(
            refusals.CLAIM_WINDOW_EXPIRED,
            f"claims about order {order.order_id} were accepted until {closes.isoformat()} "
            f"({_days(policy)} after it was placed); the product now counts as activated (R3)",
        )
    if meaningful_length(description) < policy.min_description_chars:
        raise PolicyRefusal(
            refusals.INSUFFICIENT_REASONS,
            f"describe what went wrong in at least {policy.min_description_chars} characters a reader "
            "can see (spaces count once between words, invisible characters not at all), with the "
            "details support needs to check it (R4)",
        )
    if kind in EVIDENCE_NEEDED and evidence_count == 0:
        raise PolicyRefusal(
            refusals.EVIDENCE_REQUIRED,
            "attach at least one file that shows the number is invalid, such as a screenshot of the "
            "service refusing it (R6)",
        )


def check_activation_for_claim(
    kind: ComplaintKind, status: ActivationStatus | None, expires_at: datetime | None = None
) -> None:
    """R5 and R2 at intake: what the number's activation already settled needs no claim.

    An SMS received means the activation is completed and not refundable (R1, R5); a number still
    waiting is canceled and refunded automatically if no SMS comes (R2), so a claim then is premature."""
    if kind is not ComplaintKind.SMS_NOT_RECEIVED or status is None:
        return
    if status is ActivationStatus.COMPLETED:
        raise PolicyRefusal(
            refusals.ACTIVATION_COMPLETED,
            "the ledger shows the SMS was received and the activation completed, so it is not "
            "refundable (R1, R5)",
        )
    if status is ActivationStatus.WAITING_FOR_SMS:
        until = "" if expires_at is None else f" until {expires_at.isoformat()}"
        raise PolicyRefusal(
            refusals.ACTIVATION_PENDING,
            f"the number is still waiting for its SMS{until}; if none comes it is canceled and "
            "refunded automatically, with no claim needed (R2)",
        )


def already_refunded(order: Order) -> PolicyRefusal:
    """An order's price comes back once, whichever way: a second claim about it has nothing to refund."""
    return PolicyRefusal(
        refusals.ALREADY_REFUNDED,
        f"order {order.order_id} has already been refunded in full; there is nothing left to claim",
    )


def already_remedied(order: Order) -> PolicyRefusal:
    """An order is made good once (R12, R16), by a refund or a replacement: one already replaced has
    nothing left to refund or replace."""
    return PolicyRefusal(
        refusals.ALREADY_REMEDIED,
        f"order {order.order_id} has already been made good with a replacement; an order is made good "
        "once, so there is nothing left to claim",
    )


def _days(policy: PolicySnapshot) -> str:
    window = policy.claim_window
    if window.total_seconds() % 86_400 == 0:
        days = int(window.total_seconds() // 86_400)
        return f"{days} day{'s' if days != 1 else ''}"
    return str(window)
