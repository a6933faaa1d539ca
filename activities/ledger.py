"""Activities over the ledger. Workflow id and run id come from the activity context, not the payload.

What they log names no one and carries no text a person wrote: event types, statuses, amounts and ids.
The complaint and workflow each line is about are fields bound by the worker's `ActivityLogContext`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ledger.records import (
    ComplaintTransition,
    IssuedRefund,
    IssuedReplacement,
    Notification,
    RefundIssue,
    ReplacementIssue,
)
from ledger.repository import Ledger, OrderAlreadyRefunded, OrderAlreadyRemedied
from ledger.vault import VaultError, VaultKeyring
from policy import refusals
from policy.activation import ActivationState
from policy.complaint import SealedSecret
from policy.models import Frozen


class StoreCredentials(Frozen):
    """Sealed credentials for access request `request_no` of a complaint."""

    complaint_id: str
    request_no: int
    sealed: SealedSecret


class LedgerActivities:
    def __init__(self, ledger: Ledger, keyring: VaultKeyring) -> None:
        self._ledger = ledger
        self._keyring = keyring

    @activity.defn
    async def record_transition(self, transition: ComplaintTransition) -> None:
        """Audit event + projection (R16). A retry finds the event recorded and changes nothing."""
        info = activity.info()
        await self._ledger.record_transition(info.workflow_id or "", info.workflow_run_id or "", transition)
        activity.logger.info(
            "complaint %s: %s",
            transition.event.type,
            transition.state.status.value,
            extra={"event_type": transition.event.type, "status": transition.state.status.value},
        )

    @activity.defn
    async def issue_refund(self, issue: RefundIssue) -> IssuedRefund:
        """Credit the balance; the ledger's unique keys make this exactly-once per complaint or activation,
        and once per order (R16): a second source for the same order is refused, not paid
        (`already_refunded`, or `already_remedied` where the order was replaced)."""
        try:
            refund = await self._ledger.issue_refund(issue)
        except OrderAlreadyRefunded as err:
            raise ApplicationError(str(err), type=refusals.ALREADY_REFUNDED, non_retryable=True) from None
        except OrderAlreadyRemedied as err:
            raise ApplicationError(str(err), type=refusals.ALREADY_REMEDIED, non_retryable=True) from None
        activity.logger.info(
            "refund %s for %s %s: %s %s (%s)",
            refund.refund_id,
            issue.source_kind,
            issue.source_id,
            refund.amount.amount,
            refund.amount.currency,
            "issued" if refund.created else "already issued",
        )
        return refund

    @activity.defn
    async def issue_replacement(self, issue: ReplacementIssue) -> IssuedReplacement:
        """Record the replacement, once per complaint and once per order (R12, R16): an order already
        refunded or replaced through another complaint is refused (`already_remedied`), not replaced."""
        try:
            return await self._ledger.issue_replacement(issue)
        except OrderAlreadyRemedied as err:
            raise ApplicationError(str(err), type=refusals.ALREADY_REMEDIED, non_retryable=True) from None

    @activity.defn
    async def store_credentials(self, request: StoreCredentials) -> str:
        """Check the seal opens for this complaint, file it in the vault, return only the reference."""
        try:
            self._keyring.open(request.sealed, context=request.complaint_id)
        except VaultError as exc:
            raise ApplicationError(
                "the credentials could not be read; seal them again for this complaint",
                type=refusals.INVALID_CREDENTIALS,
                non_retryable=True,
            ) from exc
        return await self._ledger.store_secret(request.complaint_id, request.request_no, request.sealed)

    @activity.defn
    async def record_activation(self, state: ActivationState) -> None:
        """The activation's projection (R1, R2); a retry or a late write never moves it backwards."""
        info = activity.info()
        await self._ledger.record_activation(info.workflow_id or "", info.workflow_run_id or "", state)

    @activity.defn
    async def activation_of_order(self, order_id: str) -> ActivationState | None:
        """What the ledger knows of the order's number, for R5's intake inside the claim workflow."""
        record = await self._ledger.activation_of_order(order_id)
        return None if record is None else record.state

    @activity.defn
    async def notify(self, message: Notification) -> None:
        """Write to the outbox; delivery is a sender's job, outside the policy."""
        await self._ledger.enqueue_notification(message)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.record_transition,
            self.issue_refund,
            self.issue_replacement,
            self.store_credentials,
            self.record_activation,
            self.activation_of_order,
            self.notify,
        ]
