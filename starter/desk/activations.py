"""A rented number's activation (R1, R2): start it, read it, report its SMS, cancel it."""

from __future__ import annotations

from typing import Any, TypeVar

from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ledger.records import ActivationRecord
from policy import intake, refusals
from policy.activation import (
    ActivationState,
    CancelActivation,
    SmsReceived,
    StartActivation,
    check_cancel,
    check_sms,
)
from policy.ids import activation_id_of, activation_workflow_id, order_id_of_activation
from policy.models import Actor, Order, ProductKind, Role
from policy.refusals import PolicyRefusal
from starter.desk.errors import ActivationNotFound, ActivationUnresponsive
from starter.desk.orders import Orders
from starter.desk.plumbing import Update, may_see
from workflows.activation import NumberActivationWorkflow

ActivationAction = TypeVar("ActivationAction", SmsReceived, CancelActivation)


class Activations(Orders):
    async def start_activation(
        self, order_id: str, phone_number: str, service: str, started_by: Actor
    ) -> tuple[ActivationState, bool]:
        """Start the order's number waiting for its SMS (R1, R2). Idempotent: the same number and service
        again is (activation, False); another for the order is `activation_conflict`."""
        order = await self.get_order(order_id, seen_by=started_by)
        if order.product.kind is not ProductKind.VIRTUAL_NUMBER:
            raise PolicyRefusal(
                refusals.KIND_NOT_FOR_PRODUCT,
                f"order {order_id} is for software; only a virtual number is activated",
            )
        start = StartActivation(
            activation_id=activation_id_of(order_id),
            order=order,
            phone_number=phone_number,
            service=service,
            started_by=started_by,
            policy=self.policy,
        )
        existing = await self.ledger.activation_of_order(order_id)
        if existing is not None:
            return _same_activation(existing.state, start), False
        await self.refuse_if_remedied(order)
        workflow_id = activation_workflow_id(order_id)
        try:
            handle = await self.client.start_workflow(
                NumberActivationWorkflow.run,
                start,
                id=workflow_id,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:  # started by a racing request, not projected yet
            state = await self._query_activation(
                start.activation_id, self.client.get_workflow_handle(workflow_id)
            )
            return _same_activation(state, start), False
        return await self._query_activation(start.activation_id, handle), True

    async def refuse_if_remedied(self, order: Order) -> None:
        """An order is made good once (R12, R16), by a refund or a replacement: one refunded already is
        `already_refunded`, one replaced `already_remedied`, for a new complaint or activation alike."""
        remedy = await self.ledger.remedy_of_order(order.order_id)
        if remedy is None:
            return
        raise intake.already_refunded(order) if remedy.kind == "refund" else intake.already_remedied(order)

    async def get_activation(self, activation_id: str, seen_by: Actor) -> ActivationState:
        """The activation as it stands: the ledger's projection, which its workflow writes with each change
        (only one started a moment ago, not projected yet, is asked of its workflow)."""
        return (await self._activation_record(activation_id, seen_by)).state

    async def activation_of_order(self, order_id: str) -> ActivationState | None:
        """What the ledger knows of the order's number (for the order's page)."""
        record = await self.ledger.activation_of_order(order_id)
        return None if record is None else record.state

    async def receive_sms(self, activation_id: str, actor: Actor, text: str) -> ActivationState:
        """R1: the SMS came; a retry of the same SMS answers with the activation as it is."""
        sms = SmsReceived(actor=actor, text=text)
        record = await self._activation_record(activation_id, actor)
        if record.state.is_final and check_sms(record.state, sms):
            return record.state
        return await self._act_on_activation(record, NumberActivationWorkflow.receive_sms, sms)

    async def cancel_activation(self, activation_id: str, actor: Actor) -> ActivationState:
        """R2: cancel before an SMS came; the full price goes back once, however often this is called."""
        cancel = CancelActivation(actor=actor)
        record = await self._activation_record(activation_id, actor)
        if record.state.is_final and check_cancel(record.state, cancel):
            return record.state
        canceled = await self._act_on_activation(record, NumberActivationWorkflow.cancel, cancel)
        return await self._once_projected(canceled)

    async def _activation_record(self, activation_id: str, seen_by: Actor) -> ActivationRecord:
        """The activation's ledger record, or (just started, not projected yet) its workflow's state."""
        order_id = order_id_of_activation(activation_id)
        if order_id is None:
            raise ActivationNotFound(activation_id)
        if seen_by.role is Role.CUSTOMER:
            # Another customer's order and no order at all are the same one ledger read, and neither asks
            # Temporal anything: neither the time taken nor a stopped worker tells which ids exist.
            order = await self.ledger.get_order(order_id)
            if order is None or not may_see(seen_by, order.customer_id):
                raise ActivationNotFound(activation_id)
        record = await self.ledger.activation_of_order(order_id) or await self.unprojected_activation(
            order_id
        )
        if record is None or record.state.activation_id != activation_id:
            raise ActivationNotFound(activation_id)
        if not may_see(seen_by, record.state.customer_id):
            raise ActivationNotFound(activation_id)
        return record

    async def unprojected_activation(self, order_id: str) -> ActivationRecord | None:
        """An activation the ledger has not heard of yet (just started), from its workflow."""
        handle = self.client.get_workflow_handle(activation_workflow_id(order_id))
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        run = self.client.get_workflow_handle(handle.id, run_id=described.run_id)
        state = await self._query_activation(activation_id_of(order_id), run)
        return ActivationRecord(workflow_id=handle.id, run_id=described.run_id, state=state)

    async def _once_projected(self, state: ActivationState) -> ActivationState:
        """`state`, once the ledger's projection has caught up with it: the cancel update answers as the run
        starts writing the canceled activation, and a read right after the answer is the ledger's."""

        async def projected() -> bool:
            record = await self.ledger.get_activation(state.activation_id)
            return record is not None and record.state.version >= state.version

        await self.once_projected(projected)
        return state

    def _activation_handle(self, record: ActivationRecord) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(record.workflow_id, run_id=record.run_id)

    async def _query_activation(
        self, activation_id: str, handle: WorkflowHandle[Any, Any]
    ) -> ActivationState:
        return await self.ask_state(
            ActivationUnresponsive(activation_id), handle, NumberActivationWorkflow.state
        )

    async def _act_on_activation(
        self,
        record: ActivationRecord,
        update: Update[ActivationAction, ActivationState],
        argument: ActivationAction,
    ) -> ActivationState:
        """The update, where the workflow still runs; a final activation answers from the ledger's copy,
        with the policy's own refusal."""
        activation_id = record.state.activation_id
        try:
            return await self.update(
                ActivationUnresponsive(activation_id), self._activation_handle(record), update, argument
            )
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
        # It ended between the ledger read and the update: answer as for any final activation.
        final = await self._activation_record(activation_id, argument.actor)
        if isinstance(argument, SmsReceived):
            check_sms(final.state, argument)
        else:
            check_cancel(final.state, argument)
        return final.state


def _same_activation(existing: ActivationState, start: StartActivation) -> ActivationState:
    """A repeated start is answered with the activation; a different number for the order is a conflict."""
    if (existing.phone_number, existing.service) != (start.phone_number, start.service):
        raise PolicyRefusal(
            refusals.ACTIVATION_CONFLICT,
            f"order {start.order.order_id} already has an activation ({existing.phone_number} for "
            f"{existing.service}); an order rents one number",
        )
    return existing
