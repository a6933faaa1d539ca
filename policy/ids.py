"""Every id format the desk makes or reads, in one place.

Some ids carry a rule. A complaint's workflow id is derived from its order and kind, so Temporal itself
refuses a second open complaint of that kind on the order (R15); an activation's is derived from its order,
so an order rents one number. The workflows check that they run under these ids, so a client that starts
one directly under another id cannot get around the rules. The complaint id adds a random suffix to the
workflow id's parts, so that a later complaint on the same order and kind, once the first has closed, is a
new complaint. The ledger's own row ids (refunds, replacements, evidence, vault entries) are random and
opaque, each with a prefix that says what it names.

This module sits under `policy/` because the ledger, the workflows and the desk all read it, and it must
not import any of them.
"""

from __future__ import annotations

import secrets
import uuid

from policy.models import ComplaintKind

ACTIVATION_PREFIX = "act_"


def complaint_workflow_id(order_id: str, kind: ComplaintKind) -> str:
    """`complaint.<order>.<kind>`: one running complaint per order and kind (R15)."""
    return f"complaint.{order_id}.{kind.value}"


def activation_workflow_id(order_id: str) -> str:
    """`activation.<order>`: one activation per order."""
    return f"activation.{order_id}"


def new_complaint_id(order_id: str, kind: ComplaintKind) -> str:
    """`<order>.<kind>.<8 hex digits>`: what the API and the CLI call a complaint by."""
    return f"{order_id}.{kind.value}.{secrets.token_hex(4)}"


def workflow_id_of(complaint_id: str) -> str:
    """The workflow a complaint id names; `ValueError` if it is not one the desk made."""
    parts = complaint_id.split(".")
    if len(parts) != 3:
        raise ValueError(f"{complaint_id!r} is not a complaint id")
    return complaint_workflow_id(parts[0], ComplaintKind(parts[1]))


def activation_id_of(order_id: str) -> str:
    """`act_<order>`: a rented number is one number, activated once."""
    return f"{ACTIVATION_PREFIX}{order_id}"


def order_id_of_activation(activation_id: str) -> str | None:
    """The order behind an activation id, or None if it is not one the desk made."""
    prefix, _, order_id = activation_id.partition("_")
    return order_id if prefix + "_" == ACTIVATION_PREFIX and order_id else None


def refund_id() -> str:
    return f"rf_{uuid.uuid4().hex}"


def replacement_id() -> str:
    return f"rp_{uuid.uuid4().hex}"


def evidence_ref() -> str:
    return f"ev_{uuid.uuid4().hex}"


def vault_ref() -> str:
    return f"vault_{uuid.uuid4().hex}"


def webhook_endpoint_id() -> str:
    """`we_<32 hex digits>`: also the context a webhook endpoint's secret is sealed to."""
    return f"we_{uuid.uuid4().hex}"
