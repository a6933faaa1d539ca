"""R1 and R2 on the time-skipping Temporal server, with the real activities and a real ledger.

`env.sleep()` skips server time exactly, so "one second before the wait ends" is one second before it;
`outcome()` waits on the workflow's result, which lets the server skip to the timer.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from policy.activation import ActivationState, CancelReason, StartActivation
from policy.ids import activation_workflow_id
from policy.models import ActivationStatus, Actor, ComplaintKind, Order, Role
from policy.refusals import PolicyRefusal
from starter.desk import ActivationNotFound, ComplaintDesk
from tests.conftest import TimeSkippingDesk
from tests.factories import BACKEND, CLAIM, POLICY, number_order
from workflows.activation import NumberActivationWorkflow

A = ActivationStatus
SMS_WAIT = timedelta(minutes=20)


async def rent(desk: ComplaintDesk, ledger: Ledger, price: str = "0.75") -> tuple[Order, ActivationState]:
    """A recorded number order and its activation, waiting for the SMS."""
    order, _ = await ledger.record_order(number_order(price=price, placed_at=await desk.now()))
    activation, created = await desk.start_activation(order.order_id, "+447700900123", "whatsapp", BACKEND)
    assert created
    return order, activation


async def ended(desk: ComplaintDesk, activation_id: str) -> ActivationState:
    """Wait for the activation's workflow to end, letting the server skip to its timer."""
    assert isinstance(desk, TimeSkippingDesk)
    order_id = activation_id.removeprefix("act_")
    handle = desk.client.get_workflow_handle(activation_workflow_id(order_id), result_type=ActivationState)
    async with desk.time_skipping():
        result: ActivationState = await handle.result()
    return result


async def refused(code: str, action: object) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as caught:
        await action  # type: ignore[misc]
    assert caught.value.code == code, caught.value
    return caught.value


def owner(order: Order) -> Actor:
    return Actor(role=Role.CUSTOMER, id=order.customer_id)


# ------------------------------------------------------------------------------------------------ R1


async def test_r1_sms_one_second_before_the_wait_ends_completes_the_activation(
    desk: ComplaintDesk, ledger: Ledger, env: WorkflowEnvironment
) -> None:
    order, activation = await rent(desk, ledger)
    assert activation.status is A.WAITING_FOR_SMS
    assert activation.expires_at == activation.started_at + SMS_WAIT

    await env.sleep(SMS_WAIT - timedelta(seconds=1))
    completed = await desk.receive_sms(activation.activation_id, BACKEND, "Your WhatsApp code: 123-456")

    assert completed.status is A.COMPLETED
    assert completed.sms_text == "Your WhatsApp code: 123-456"
    assert completed.completed_at is not None and completed.completed_at < completed.expires_at
    final = await ended(desk, activation.activation_id)
    assert final.status is A.COMPLETED and final.refund is None
    record = await ledger.activation_of_order(order.order_id)
    assert record is not None and record.state.status is A.COMPLETED
    assert await ledger.refund_of_order(order.order_id) is None
    assert (await ledger.balance(order.customer_id)).entries == []


async def test_r1_completed_activation_is_not_refundable(desk: ComplaintDesk, ledger: Ledger) -> None:
    order, activation = await rent(desk, ledger)
    await desk.receive_sms(activation.activation_id, BACKEND, "code 4242")

    refusal = await refused(
        "activation_completed", desk.file(order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM, owner(order))
    )
    assert "R5" in refusal.message
    for _ in range(2):  # while the workflow runs, then from the ledger once it has ended
        for actor in (BACKEND, owner(order)):
            refusal = await refused("invalid_state", desk.cancel_activation(activation.activation_id, actor))
            assert "not refundable" in refusal.message
        await ended(desk, activation.activation_id)
    assert (await ledger.balance(order.customer_id)).entries == []
    assert (await ledger.table_counts(["complaints", "refunds"])) == {"complaints": 0, "refunds": 0}


async def test_r1_the_same_sms_again_is_answered_and_another_is_refused(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    _, activation = await rent(desk, ledger)
    first = await desk.receive_sms(activation.activation_id, BACKEND, "code 4242")
    again = await desk.receive_sms(activation.activation_id, BACKEND, "code 4242")
    assert again.status is A.COMPLETED and again.completed_at == first.completed_at
    await refused("invalid_state", desk.receive_sms(activation.activation_id, BACKEND, "code 9999"))
    await ended(desk, activation.activation_id)
    after_end = await desk.receive_sms(activation.activation_id, BACKEND, "code 4242")
    assert after_end.sms_text == "code 4242"


async def test_r1_only_the_backend_reports_an_sms(desk: ComplaintDesk, ledger: Ledger) -> None:
    order, activation = await rent(desk, ledger)
    for actor in (owner(order), Actor(role=Role.SUPPORT, id="alice")):
        await refused("forbidden_actor", desk.receive_sms(activation.activation_id, actor, "code 1"))
    assert (await desk.get_activation(activation.activation_id, BACKEND)).status is A.WAITING_FOR_SMS


# ------------------------------------------------------------------------------------------------ R2


async def test_r2_no_sms_in_time_cancels_and_refunds_the_full_price_once(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order, activation = await rent(desk, ledger, price="0.75")

    final = await ended(desk, activation.activation_id)

    assert final.status is A.CANCELED
    assert final.cancel_reason is CancelReason.NO_SMS_IN_TIME
    assert final.canceled_at is not None
    assert final.expires_at <= final.canceled_at < final.expires_at + timedelta(seconds=1), "when it ended"
    assert final.refund is not None and final.refund.amount == order.price
    balance = await ledger.balance(order.customer_id)
    assert balance.totals == {"EUR": Decimal("0.75")}
    assert [e.kind for e in balance.entries] == ["refund"]
    refund = await ledger.refund_of_order(order.order_id)
    assert refund is not None and (refund.source_kind, refund.source_id) == (
        "activation",
        final.activation_id,
    )
    assert refund.actor == "system:refund-desk"


async def test_r2_a_late_sms_after_the_cancel_is_refused_with_its_reason(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order, activation = await rent(desk, ledger)
    await ended(desk, activation.activation_id)

    refusal = await refused("invalid_state", desk.receive_sms(activation.activation_id, BACKEND, "late code"))

    assert "late SMS" in refusal.message
    state = await desk.get_activation(activation.activation_id, owner(order))
    assert state.status is A.CANCELED and state.sms_text is None
    assert len((await ledger.balance(order.customer_id)).entries) == 1


@pytest.mark.parametrize("who", ["customer", "backend"])
async def test_r2_cancel_before_the_sms_refunds_automatically_and_exactly_once(
    desk: ComplaintDesk, ledger: Ledger, who: str
) -> None:
    order, activation = await rent(desk, ledger, price="1.20")
    actor = owner(order) if who == "customer" else BACKEND

    results = await asyncio.gather(
        *(desk.cancel_activation(activation.activation_id, actor) for _ in range(4))
    )

    refunds = {r.refund.issued_at if r.refund else None for r in results}
    assert all(r.status is A.CANCELED for r in results)
    assert len(refunds) == 1 and None not in refunds
    expected = CancelReason.CANCELED_BY_CUSTOMER if who == "customer" else CancelReason.CANCELED_BY_BACKEND
    assert results[0].cancel_reason is expected
    assert results[0].canceled_by == str(actor)
    await ended(desk, activation.activation_id)
    again = await desk.cancel_activation(activation.activation_id, actor)
    assert again.refund == results[0].refund
    balance = await ledger.balance(order.customer_id)
    assert balance.totals == {"EUR": Decimal("1.20")} and len(balance.entries) == 1


async def test_r2_another_customer_cannot_cancel_or_see_it(desk: ComplaintDesk, ledger: Ledger) -> None:
    _, activation = await rent(desk, ledger)
    stranger = Actor(role=Role.CUSTOMER, id="someone-else")
    with pytest.raises(ActivationNotFound):
        await desk.cancel_activation(activation.activation_id, stranger)
    with pytest.raises(ActivationNotFound):
        await desk.get_activation(activation.activation_id, stranger)
    assert (await desk.get_activation(activation.activation_id, BACKEND)).status is A.WAITING_FOR_SMS


async def test_r2_history_holds_one_refund_activity_whatever_the_repeats(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order, activation = await rent(desk, ledger)
    for _ in range(3):
        await desk.cancel_activation(activation.activation_id, owner(order))
    await ended(desk, activation.activation_id)
    handle = desk.client.get_workflow_handle(activation_workflow_id(order.order_id))
    history = await handle.fetch_history()
    refunds = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "issue_refund"
    ]
    assert len(refunds) == 1


async def test_r2_an_activation_started_directly_under_another_id_is_refused(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """One activation per order is Temporal's one workflow per id: a second one under another id would
    wait, and refund, a second time."""
    order, activation = await rent(desk, ledger)
    start = StartActivation(
        activation_id=activation.activation_id,
        order=order,
        phone_number="+447700900999",
        service="telegram",
        started_by=BACKEND,
        policy=POLICY,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await desk.client.execute_workflow(
            NumberActivationWorkflow.run, start, id=f"second-{order.order_id}", task_queue=desk.task_queue
        )
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "wrong_workflow_id"
    record = await ledger.activation_of_order(order.order_id)
    assert record is not None and record.state.phone_number == "+447700900123"
