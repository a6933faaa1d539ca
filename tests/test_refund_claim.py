"""R3-R6, R15 and the claims' own review (R13's duty, R14) on the time-skipping Temporal server, with the
real activities and a real ledger.

Orders age on the server's clock: `env.sleep()` skips exactly the time given, and the desk judges intake by
that clock, as the workflow does. Intake refusals are checked twice: at the desk (nothing is written) and
inside the workflow, for a client that starts one directly.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from policy.complaint import FileClaim, Review
from policy.evidence import EvidenceFile
from policy.ids import complaint_workflow_id, new_complaint_id, workflow_id_of
from policy.models import (
    ActivationStatus,
    ClaimRejection,
    ComplaintKind,
    ComplaintStatus,
    DefectRejection,
    Order,
    ReviewDecision,
)
from policy.refusals import PolicyRefusal
from starter.desk import ComplaintDesk
from tests.evidence_files import PNG
from tests.factories import (
    BACKEND,
    CLAIM,
    DESCRIPTION,
    POLICY,
    SUPPORT,
    customer,
    history_text,
    number_order,
    software_order,
)
from workflows.refund_claim import RefundClaimWorkflow

S = ComplaintStatus
K = ComplaintKind
SMS = K.SMS_NOT_RECEIVED
INVALID = K.INVALID_NUMBER
SCREENSHOT = EvidenceFile(name="2fa-refused.png", content_type="image/png", data=PNG)
APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="provider log shows no delivery")
WRITTEN = ["complaints", "complaint_events", "evidence", "refunds", "notifications"]


async def recorded(
    desk: ComplaintDesk, ledger: Ledger, kind: ComplaintKind = SMS, price: str = "0.75"
) -> Order:
    """An order in the ledger for the product `kind` is about, placed now by the server's clock."""
    made = number_order(price=price) if kind is not K.MAJOR_DEFECT else software_order(price=price)
    order, _ = await ledger.record_order(made.model_copy(update={"placed_at": await desk.now()}))
    return order


async def claim(
    desk: ComplaintDesk, order: Order, kind: ComplaintKind = SMS, evidence: list[EvidenceFile] | None = None
) -> str:
    if evidence is None:
        evidence = [SCREENSHOT] if kind is INVALID else []
    state = await desk.file(order, kind, CLAIM, customer(order), evidence=evidence)
    assert state.status is S.UNDER_REVIEW
    return state.complaint_id


async def refused(code: str, action: object) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as caught:
        await action  # type: ignore[misc]
    assert caught.value.code == code, caught.value
    return caught.value


async def refused_when_started_directly(
    desk: ComplaintDesk, order: Order, description: str = CLAIM, workflow_id: str | None = None
) -> str:
    """Start a claim's workflow as a client that skips the desk would; returns the code it failed with."""
    filing = FileClaim(
        complaint_id=new_complaint_id(order.order_id, SMS),
        kind=SMS,
        order=order,
        description=description,
        filed_by=BACKEND,
        policy=POLICY,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await desk.client.execute_workflow(
            RefundClaimWorkflow.run,
            filing,
            id=workflow_id or complaint_workflow_id(order.order_id, SMS),
            task_queue=desk.task_queue,
        )
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type, cause
    return cause.type


async def nothing_written(ledger: Ledger) -> None:
    assert await ledger.table_counts(WRITTEN) == dict.fromkeys(WRITTEN, 0)


# ------------------------------------------------------------------------------------------------ R3


@pytest.mark.parametrize("kind", list(K))
async def test_r3_a_claim_in_the_last_second_of_the_window_is_accepted_one_second_late_is_not(
    desk: ComplaintDesk, ledger: Ledger, env: WorkflowEnvironment, kind: ComplaintKind
) -> None:
    order = await recorded(desk, ledger, kind)
    late, _ = await ledger.record_order(order.model_copy(update={"order_id": f"{order.order_id}-late"}))

    await env.sleep(POLICY.claim_window - timedelta(seconds=1))
    description = DESCRIPTION if kind is K.MAJOR_DEFECT else CLAIM
    evidence = [SCREENSHOT] if kind is INVALID else []
    accepted = await desk.file(order, kind, description, customer(order), evidence=evidence)
    assert accepted.status is S.UNDER_REVIEW

    await env.sleep(timedelta(seconds=2))
    refusal = await refused(
        "claim_window_expired", desk.file(late, kind, description, customer(late), evidence=evidence)
    )
    assert "counts as activated" in refusal.message
    assert [c.complaint_id for c in await desk.list_complaints()] == [accepted.complaint_id]


async def test_r3_a_workflow_started_directly_refuses_an_expired_claim_and_writes_nothing(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """The desk is not the only way in: the workflow applies intake itself, at its start time."""
    placed = await desk.now() - POLICY.claim_window - timedelta(seconds=1)
    order = number_order(placed_at=placed)
    assert await refused_when_started_directly(desk, order) == "claim_window_expired"
    await nothing_written(ledger)


# ------------------------------------------------------------------------------------------------ R4


@pytest.mark.parametrize("kind", [SMS, INVALID])
async def test_r4_a_claim_needs_forty_meaningful_characters(
    desk: ComplaintDesk, ledger: Ledger, kind: ComplaintKind
) -> None:
    order = await recorded(desk, ledger)
    evidence = [SCREENSHOT] if kind is INVALID else []
    too_short = "x" * 39
    padded = f"  {'no sms   at   all':<30}\n\n\t" + " " * 40  # 18 meaningful characters, lots of padding

    for description in (too_short, padded, " " * 200):
        refusal = await refused(
            "insufficient_reasons", desk.file(order, kind, description, customer(order), evidence=evidence)
        )
        assert "40 characters" in refusal.message
    await nothing_written(ledger)

    state = await desk.file(order, kind, "y" * 40, customer(order), evidence=evidence)
    assert state.status is S.UNDER_REVIEW and state.description == "y" * 40


async def test_r4_a_workflow_started_directly_refuses_a_thin_description(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = number_order(placed_at=await desk.now())
    assert await refused_when_started_directly(desk, order, "no sms") == "insufficient_reasons"
    await nothing_written(ledger)


# ------------------------------------------------------------------------------------------------ R5


async def test_r5_approved_sms_claim_is_refunded_in_full_once(desk: ComplaintDesk, ledger: Ledger) -> None:
    order = await recorded(desk, ledger, price="3.40")
    complaint_id = await claim(desk, order)

    state = await desk.review(complaint_id, APPROVE)

    assert state.status is S.REFUNDED
    assert state.resolution is not None and state.resolution.refund is not None
    assert state.resolution.refund.amount == order.price
    final = await desk.outcome(complaint_id)
    assert final.status is S.REFUNDED
    balance = await ledger.balance(order.customer_id)
    assert balance.totals == {"EUR": Decimal("3.40")} and len(balance.entries) == 1
    await refused("invalid_state", desk.review(complaint_id, APPROVE))
    assert len((await ledger.balance(order.customer_id)).entries) == 1


async def test_r5_rejected_sms_claim_ends_with_its_reason_and_no_refund(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = await recorded(desk, ledger)
    complaint_id = await claim(desk, order)
    reject = Review(actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=ClaimRejection.SMS_DELIVERED)

    state = await desk.review(complaint_id, reject)

    assert state.status is S.REJECTED
    assert state.resolution is not None and state.resolution.reason_code == "sms_delivered"
    assert state.resolution.refund is None
    assert await ledger.refund_of_order(order.order_id) is None


async def test_r5_claim_refused_at_intake_once_the_ledger_shows_the_sms(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = await recorded(desk, ledger)
    activation, _ = await desk.start_activation(order.order_id, "+447700900123", "whatsapp", BACKEND)
    await refused("activation_pending", desk.file(order, SMS, CLAIM, customer(order)))
    await desk.receive_sms(activation.activation_id, BACKEND, "code 1234")

    refusal = await refused("activation_completed", desk.file(order, SMS, CLAIM, customer(order)))

    assert "not refundable" in refusal.message
    assert await ledger.table_counts(["complaints", "refunds"]) == {"complaints": 0, "refunds": 0}
    # An invalid-number claim is another matter (R6): the SMS may have come to a number that then failed.
    assert (await desk.file(order, INVALID, CLAIM, customer(order), evidence=[SCREENSHOT])).kind is INVALID


async def test_r5_a_workflow_started_directly_checks_the_ledger_for_the_sms(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = await recorded(desk, ledger)
    activation, _ = await desk.start_activation(order.order_id, "+447700900123", "whatsapp", BACKEND)
    completed = await desk.receive_sms(activation.activation_id, BACKEND, "code 1234")
    assert completed.status is ActivationStatus.COMPLETED
    assert await refused_when_started_directly(desk, order) == "activation_completed"
    assert await ledger.table_counts(["complaints", "refunds"]) == {"complaints": 0, "refunds": 0}


async def test_r5_a_number_refunded_automatically_cannot_be_claimed_again(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = await recorded(desk, ledger)
    activation, _ = await desk.start_activation(order.order_id, "+447700900123", "whatsapp", BACKEND)
    canceled = await desk.cancel_activation(activation.activation_id, customer(order))
    assert canceled.refund is not None

    for kind in (SMS, INVALID):
        await refused(
            "already_refunded", desk.file(order, kind, CLAIM, customer(order), evidence=[SCREENSHOT])
        )
    assert len((await ledger.balance(order.customer_id)).entries) == 1


# ------------------------------------------------------------------------------------------------ R6


async def test_r6_invalid_number_claim_needs_evidence(desk: ComplaintDesk, ledger: Ledger) -> None:
    order = await recorded(desk, ledger)

    refusal = await refused("evidence_required", desk.file(order, INVALID, CLAIM, customer(order)))

    assert "screenshot" in refusal.message
    await nothing_written(ledger)


async def test_r6_evidence_is_checked_for_type_and_size_before_anything_is_stored(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = await recorded(desk, ledger)
    not_a_png = EvidenceFile(name="shot.png", content_type="image/png", data=b"MZ\x90\x00 an executable")
    program = EvidenceFile(name="setup.exe", content_type="application/x-msdownload", data=b"MZ\x90\x00")
    too_many = [SCREENSHOT] * 6
    for evidence in ([not_a_png], [program], too_many):
        await refused(
            "evidence_rejected", desk.file(order, INVALID, CLAIM, customer(order), evidence=evidence)
        )
    await nothing_written(ledger)


async def test_r6_evidence_lives_in_the_ledger_and_only_its_reference_in_the_history(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = await recorded(desk, ledger)
    log = EvidenceFile(name="sms-log.txt", content_type="text/plain", data=b"12:01 code requested\n" * 50)
    complaint_id = await claim(desk, order, INVALID, evidence=[SCREENSHOT, log])

    state = await desk.get(complaint_id)
    assert [(e.name, e.content_type, e.size) for e in state.evidence] == [
        ("2fa-refused.png", "image/png", len(PNG)),
        ("sms-log.txt", "text/plain", len(log.data)),
    ]
    assert state.evidence[0].sha256 == SCREENSHOT.sha256
    stored = await ledger.evidence_data(state.evidence[1].ref)
    assert stored == (complaint_id, log)
    history = await desk.client.get_workflow_handle(workflow_id_of(complaint_id)).fetch_history()
    text = history_text(history)
    assert state.evidence[1].ref in text, "the reference travels"
    assert "code requested" not in text, "the bytes do not"


async def test_r6_approved_invalid_number_claim_is_refunded_rejected_one_is_not(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    approved_order = await recorded(desk, ledger)
    rejected_order = await recorded(desk, ledger)
    approved = await desk.review(await claim(desk, approved_order, INVALID), APPROVE)
    reject = Review(actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=ClaimRejection.NUMBER_VALID)
    rejected = await desk.review(await claim(desk, rejected_order, INVALID), reject)

    assert approved.status is S.REFUNDED
    assert await ledger.refund_of_order(approved_order.order_id) is not None
    assert rejected.status is S.REJECTED
    assert rejected.resolution is not None and rejected.resolution.reason_code == "number_valid"
    assert await ledger.refund_of_order(rejected_order.order_id) is None


async def test_r6_a_defect_reason_does_not_reject_a_number_claim(desk: ComplaintDesk, ledger: Ledger) -> None:
    order = await recorded(desk, ledger)
    complaint_id = await claim(desk, order, INVALID)
    wrong = Review(actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=DefectRejection.USER_API_MISUSE)
    wrong_kind = Review(
        actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=ClaimRejection.SMS_DELIVERED
    )

    for review in (wrong, wrong_kind):
        await refused("reason_code_not_allowed", desk.review(complaint_id, review))
    assert (await desk.get(complaint_id)).status is S.UNDER_REVIEW


# -------------------------------------------------------------------------- which kind fits which product


async def test_a_claim_must_fit_the_product_it_is_about(desk: ComplaintDesk, ledger: Ledger) -> None:
    number = await recorded(desk, ledger)
    software, _ = await ledger.record_order(software_order())
    await refused("kind_not_for_product", desk.file(number, K.MAJOR_DEFECT, DESCRIPTION, customer(number)))
    for kind in (SMS, INVALID):
        await refused(
            "kind_not_for_product",
            desk.file(software, kind, CLAIM, customer(software), evidence=[SCREENSHOT]),
        )
    await nothing_written(ledger)


# ------------------------------------------------------------------------------------------------ R15


async def test_r15_one_open_claim_per_order_and_kind(desk: ComplaintDesk, ledger: Ledger) -> None:
    order = await recorded(desk, ledger)
    first = await claim(desk, order, SMS)

    refusal = await refused("complaint_already_open", desk.file(order, SMS, CLAIM, customer(order)))
    assert order.order_id in refusal.message
    other_kind = await claim(desk, order, INVALID)
    assert other_kind != first
    await refused(
        "complaint_already_open", desk.file(order, INVALID, CLAIM, customer(order), evidence=[SCREENSHOT])
    )
    assert (await ledger.table_counts(["evidence"]))["evidence"] == 1, "a refused claim stores no evidence"

    withdrawn = await desk.withdraw(first, customer(order))
    assert withdrawn.status is S.WITHDRAWN
    again = await claim(desk, order, SMS)
    assert again not in (first, other_kind), "once closed, a new claim of the kind is a new complaint"


async def test_r15_a_workflow_started_directly_under_another_id_is_refused(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """Temporal keeps one running workflow per id; a claim under an id of the client's choosing would escape
    that, so the workflow refuses to run under any id but its order's and kind's."""
    order = await recorded(desk, ledger)
    first = await claim(desk, order, SMS)

    code = await refused_when_started_directly(desk, order, workflow_id=f"my-own-{uuid.uuid4().hex}")

    assert code == "wrong_workflow_id"
    assert (await desk.get(first)).status is S.UNDER_REVIEW, "the claim filed through the desk goes on"


# -------------------------------------------------------------------- review deadline, R13's duty, R14


async def test_unreviewed_claim_reminds_support_then_escalates_and_can_still_be_decided(
    desk: ComplaintDesk, ledger: Ledger, env: WorkflowEnvironment
) -> None:
    order = await recorded(desk, ledger)
    complaint_id = await claim(desk, order)
    filed = await desk.get(complaint_id)
    assert filed.deadline == filed.created_at + POLICY.review_window

    await env.sleep(POLICY.review_window + timedelta(hours=1))
    state = await desk.get(complaint_id)
    assert state.status is S.ESCALATED
    assert filed.deadline is not None and state.reminded_at is not None
    assert filed.deadline - POLICY.review_reminder_before <= state.reminded_at < filed.deadline
    assert [e.type for e in state.events] == ["filed", "support_reminded", "escalated"]
    templates = [m.template for m in await ledger.outbox(complaint_id=complaint_id)]
    assert templates == ["complaint_filed", "deadline_approaching", "complaint_escalated"]

    decided = await desk.review(complaint_id, APPROVE)
    assert decided.status is S.REFUNDED


async def test_claim_only_takes_review_and_withdraw(desk: ComplaintDesk, ledger: Ledger) -> None:
    order = await recorded(desk, ledger)
    complaint_id = await claim(desk, order)
    await refused("invalid_state", desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="look"))
    await refused("invalid_state", desk.mark_fixed(complaint_id, SUPPORT))
    state = await desk.get(complaint_id)
    assert state.status is S.UNDER_REVIEW and [e.type for e in state.events] == ["filed"]


async def test_r14_customer_withdraws_a_claim_before_it_is_decided(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    order = await recorded(desk, ledger)
    complaint_id = await claim(desk, order, INVALID)
    stranger = customer(number_order())
    await refused("forbidden_actor", desk.withdraw(complaint_id, stranger))

    state = await desk.withdraw(complaint_id, customer(order), note="the code came after all")

    assert state.status is S.WITHDRAWN
    final = await desk.outcome(complaint_id)
    assert final.resolution is not None and final.resolution.outcome is S.WITHDRAWN
    await refused("invalid_state", desk.review(complaint_id, APPROVE))
    assert await ledger.refund_of_order(order.order_id) is None
