"""Workflow ids that carry a rule: one open complaint per order and kind (R15), one activation per order.

Temporal refuses a second running workflow with an id already in use, so naming the workflows this way makes
the server itself keep those rules. The workflows check that they run under these ids, so a client that
starts one directly under another id cannot get around them.
"""

from __future__ import annotations

from policy.models import ComplaintKind


def complaint_workflow_id(order_id: str, kind: ComplaintKind) -> str:
    return f"complaint.{order_id}.{kind.value}"


def activation_workflow_id(order_id: str) -> str:
    return f"activation.{order_id}"
