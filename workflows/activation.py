"""One rented number's activation (docs/policy.md R1, R2).

The number waits `sms_wait` for its SMS. The SMS completes the activation, which is then not refundable
(R1). No SMS in time, or a cancel by the customer or the backend before one came, cancels it and returns
the full price to the customer's balance automatically, exactly once (R2): the ledger's unique key on the
activation makes a retried refund a no-op.
"""

from __future__ import annotations

import contextlib
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import LEDGER_CALL, LedgerActivities
    from ledger.records import Notification
    from policy import refusals, rules
    from policy.activation import (
        ActivationState,
        CancelActivation,
        SmsReceived,
        StartActivation,
        cancel_reason,
        check_cancel,
        check_sms,
    )
    from policy.ids import activation_workflow_id
    from policy.models import SYSTEM, ActivationStatus
    from policy.refusals import PolicyRefusal
    from workflows import search_attributes
    from workflows.common import check_runs_as, jsonable, refused
    from workflows.refunds import refund_full_price


@workflow.defn
class NumberActivationWorkflow:
    @workflow.init
    def __init__(self, start: StartActivation) -> None:
        started_at = workflow.now()
        self.activation = ActivationState(
            activation_id=start.activation_id,
            order=start.order,
            phone_number=start.phone_number,
            service=start.service,
            started_by=str(start.started_by),
            started_at=started_at,
            expires_at=rules.sms_wait_ends(started_at, start.policy),
        )

    @workflow.run
    async def run(self, start: StartActivation) -> ActivationState:
        check_runs_as(activation_workflow_id(self.activation.order.order_id), "number's activation", "order")
        workflow.upsert_search_attributes(search_attributes.for_order(self.activation.order))
        await self._save()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (
                    self.activation.status is ActivationStatus.COMPLETED
                    or self.activation.cancel_requested_at is not None
                ),
                timeout=self.activation.expires_at - workflow.now(),
            )
        if self.activation.status is not ActivationStatus.COMPLETED:
            await self._cancel_and_refund()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.activation

    async def _cancel_and_refund(self) -> None:
        """R2: the wait ended without an SMS; the full price goes back, once, with no claim needed."""
        now = workflow.now()
        if self.activation.cancel_requested_at is None:
            self.activation.cancel_requested_at = now  # the timer: no SMS counts from here on
        requested_by = self.activation.cancel_requested_by
        ended_by = requested_by or SYSTEM
        refund = await refund_full_price(
            "activation", self.activation.activation_id, self.activation.order, ended_by
        )
        if refund is None:
            self.activation.refund_refused = refusals.ALREADY_REFUNDED
        self.activation.refund = refund
        self.activation.status = ActivationStatus.CANCELED
        self.activation.canceled_at = now
        self.activation.canceled_by = str(ended_by)
        self.activation.cancel_reason = cancel_reason(requested_by)
        await self._save()
        amount = None if self.activation.refund is None else str(self.activation.refund.amount.amount)
        await self._notify("activation_canceled", reason=self.activation.cancel_reason, refund=amount)

    # ---------------------------------------------------------------------------------------- updates

    @workflow.update
    async def receive_sms(self, sms: SmsReceived) -> ActivationState:
        """R1: the SMS came; the activation is completed and no longer refundable."""
        self._validate_receive_sms(sms)  # again: the wait may have ended since the validator ran
        if self.activation.status is ActivationStatus.COMPLETED:
            return self.activation  # the same SMS again: a retried request
        self.activation.status = ActivationStatus.COMPLETED
        self.activation.sms_text = sms.text
        self.activation.completed_at = workflow.now()
        await self._save()
        await self._notify("sms_received")
        return self.activation

    @receive_sms.validator
    def _validate_receive_sms(self, sms: SmsReceived) -> None:
        try:
            check_sms(self.activation, sms)
        except PolicyRefusal as refusal:
            raise refused(refusal) from None

    @workflow.update
    async def cancel(self, cancel: CancelActivation) -> ActivationState:
        """R2: the customer or the backend gives up before an SMS came; the run issues the refund."""
        self._validate_cancel(cancel)  # again: an SMS may have come since the validator ran
        if self.activation.cancel_requested_at is None:
            self.activation.cancel_requested_at = workflow.now()
            self.activation.cancel_requested_by = cancel.actor
        await workflow.wait_condition(lambda: self.activation.status is ActivationStatus.CANCELED)
        return self.activation

    @cancel.validator
    def _validate_cancel(self, cancel: CancelActivation) -> None:
        try:
            check_cancel(self.activation, cancel)
        except PolicyRefusal as refusal:
            raise refused(refusal) from None

    @workflow.query
    def state(self) -> ActivationState:
        return self.activation

    # --------------------------------------------------------------------------------------- plumbing

    async def _save(self) -> None:
        """Project the new state into the ledger; its version keeps a late retry from going backwards."""
        self.activation.version += 1
        await workflow.execute_activity_method(
            LedgerActivities.record_activation, self.activation.model_copy(deep=True), **LEDGER_CALL
        )

    async def _notify(self, template: str, **payload: Any) -> None:
        await workflow.execute_activity_method(
            LedgerActivities.notify,
            Notification(
                dedupe_key=f"{self.activation.activation_id}:{self.activation.version}:{template}",
                recipient=f"customer:{self.activation.customer_id}",
                template=template,
                payload={k: jsonable(v) for k, v in payload.items()},
            ),
            **LEDGER_CALL,
        )
