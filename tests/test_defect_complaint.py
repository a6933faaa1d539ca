"""R7-R14 and R16 on the time-skipping Temporal server, with the real activities and a real ledger.

Five-day windows pass in milliseconds: `desk.outcome()` waits on the workflow result, which lets the test
server skip time; `env.sleep()` skips a given stretch while the test acts in between.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from policy.complaint import Review
from policy.ids import workflow_id_of
from policy.models import (
    Actor,
    ComplaintStatus,
    DefectRejection,
    Money,
    RemedyChoice,
    ReplacementOffer,
    ReviewDecision,
    Role,
)
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot
from starter.desk import ComplaintDesk
from tests.factories import (
    DESCRIPTION,
    POLICY,
    SECRET,
    SUPPORT,
    credentials,
    customer,
    history_text,
    software_order,
)
from workflows import search_attributes
from workflows.defect_complaint import DefectComplaintWorkflow

S = ComplaintStatus
APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="reproduced on staging")


async def file(desk: ComplaintDesk, price: str = "50.00", policy: PolicySnapshot = POLICY) -> tuple[str, str]:
    """File a defect complaint; returns (complaint id, customer id)."""
    order = software_order(price=price)
    state = await desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=policy)
    return state.complaint_id, order.customer_id


def cust(customer_id: str) -> Actor:
    return Actor(role=Role.CUSTOMER, id=customer_id)


async def refused(code: str, action: Awaitable[object]) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as caught:
        await action
    assert caught.value.code == code, caught.value
    return caught.value


async def accepted_updates(desk: ComplaintDesk, complaint_id: str) -> int:
    """Updates the workflow accepted, as its history records them (a refused one is not among them)."""
    handle = desk.client.get_workflow_handle(workflow_id_of(complaint_id))
    history = await handle.fetch_history()
    return sum(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED for e in history.events
    )


# ------------------------------------------------------------------------------------------------ R7


async def test_r7_deadline_is_rectify_window_from_the_complaint(desk: ComplaintDesk) -> None:
    complaint_id, _ = await file(desk)
    state = await desk.get(complaint_id)
    assert state.status is S.UNDER_REVIEW
    assert state.deadline == state.created_at + timedelta(days=5)

    short = PolicySnapshot(rectify_window=timedelta(hours=30))
    other_id, _ = await file(desk, policy=short)
    other = await desk.get(other_id)
    assert other.deadline == other.created_at + timedelta(hours=30)
    assert other.policy == short, "the complaint keeps the policy it was filed under"


# ------------------------------------------------------------------------------------------------ R8


@pytest.mark.parametrize("reason", list(DefectRejection))
async def test_r8_rejected_defect_ends_with_reason_and_no_refund(
    desk: ComplaintDesk, ledger: Ledger, reason: DefectRejection
) -> None:
    complaint_id, customer_id = await file(desk)
    review = Review(actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=reason, note="see terms")
    state = await desk.review(complaint_id, review)
    assert state.status is S.REJECTED
    final = await desk.outcome(complaint_id)
    assert final.resolution is not None
    assert final.resolution.outcome is S.REJECTED
    assert final.resolution.reason_code == reason.value
    assert final.resolution.refund is None
    assert await ledger.refunds_for("complaint", complaint_id) == []
    assert (await ledger.balance(customer_id)).entries == []


async def test_r8_rejection_needs_an_r8_reason(desk: ComplaintDesk) -> None:
    with pytest.raises(ValueError, match="reason_code"):
        Review(actor=SUPPORT, decision=ReviewDecision.REJECT)
    with pytest.raises(ValueError):
        Review.model_validate({"actor": SUPPORT, "decision": "reject", "reason_code": "customer_is_annoying"})


async def test_r8_approval_makes_the_deficiency_rectifying(desk: ComplaintDesk) -> None:
    complaint_id, _ = await file(desk)
    state = await desk.review(complaint_id, APPROVE)
    assert state.status is S.RECTIFYING
    assert state.review is not None and state.review.by == "support:alice"
    await refused("invalid_state", desk.review(complaint_id, APPROVE))


# ------------------------------------------------------------------------------------------------ R9


async def test_r9_refused_access_ends_without_refund(desk: ComplaintDesk, ledger: Ledger) -> None:
    complaint_id, customer_id = await file(desk)
    await desk.review(complaint_id, APPROVE)
    state = await desk.request_access(
        complaint_id, SUPPORT, scope="ssh to web01", reason="reproduce the crash"
    )
    assert state.status is S.AWAITING_ACCESS
    state = await desk.refuse_access(complaint_id, cust(customer_id))
    assert state.status is S.ACCESS_REFUSED
    final = await desk.outcome(complaint_id)
    assert final.resolution is not None and final.resolution.reason_code == "access_refused"
    assert await ledger.refunds_for("complaint", complaint_id) == []


async def test_r9_granted_credentials_reach_the_vault_and_never_the_history(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    complaint_id, customer_id = await file(desk)
    await desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="inspect logs")
    state = await desk.grant_access(complaint_id, cust(customer_id), credentials())
    assert state.status is S.UNDER_REVIEW, "back where it was before the request"
    assert state.access is not None and state.access.granted is True
    ref = state.access.credentials_ref
    assert ref is not None and ref.startswith("vault_")
    revealed = await desk.reveal_credentials(ref)
    assert revealed.secret.get_secret_value() == SECRET

    history = await desk.client.get_workflow_handle(workflow_id_of(complaint_id)).fetch_history()
    text = history_text(history)
    assert ref in text, "the search reads the payloads"
    assert SECRET not in text
    assert SECRET not in state.model_dump_json()
    stored = await ledger.sealed_secret(ref)
    assert stored is not None and SECRET not in stored[1].model_dump_json(), "encrypted at rest"


async def test_r9_credentials_sealed_for_another_complaint_are_refused(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    complaint_id, customer_id = await file(desk)
    await desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="inspect logs")
    from policy.complaint import AccessAnswer

    sealed_elsewhere = desk.keyring.seal(credentials(), context="some-other-complaint")
    answer = AccessAnswer(actor=cust(customer_id), grant=True, credentials=sealed_elsewhere)
    sending = desk._act(complaint_id, answer, defect=DefectComplaintWorkflow.answer_access)
    await refused("invalid_credentials", sending)
    state = await desk.get(complaint_id)
    assert state.status is S.AWAITING_ACCESS, "a failed grant changes nothing: the customer may answer again"
    assert state.access is not None and state.access.answered_at is None


# ----------------------------------------------------------------------------------------------- R10


async def test_r10_late_access_moves_the_deadline_by_exactly_the_delay(
    desk: ComplaintDesk, env: WorkflowEnvironment
) -> None:
    complaint_id, customer_id = await file(desk)
    before = await desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="reproduce")
    await env.sleep(timedelta(days=2))
    after = await desk.grant_access(complaint_id, cust(customer_id), credentials())
    assert after.access is not None and after.access.answered_at is not None
    delay = after.access.answered_at - after.access.requested_at
    assert delay >= timedelta(days=2)
    assert before.deadline is not None and after.deadline is not None
    assert after.deadline - before.deadline == delay
    assert after.paused == delay


async def test_r10_silence_on_access_counts_as_refusal(desk: ComplaintDesk, ledger: Ledger) -> None:
    complaint_id, _ = await file(desk)
    await desk.review(complaint_id, APPROVE)
    requested = await desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="reproduce")
    final = await desk.outcome(complaint_id)
    assert final.status is S.ACCESS_REFUSED
    assert final.resolution is not None and final.resolution.reason_code == "access_not_answered"
    assert requested.access is not None
    assert final.events[-1].at >= requested.access.requested_at + POLICY.access_response_window
    assert final.events[-1].actor == "system:refund-desk"
    assert await ledger.refunds_for("complaint", complaint_id) == []


# ----------------------------------------------------------------------------------------------- R11


async def test_r11_fixed_before_the_deadline_ends_rectified_without_refund(
    desk: ComplaintDesk, env: WorkflowEnvironment, ledger: Ledger
) -> None:
    complaint_id, _ = await file(desk)
    await desk.review(complaint_id, APPROVE)
    await env.sleep(timedelta(days=4, hours=23))
    state = await desk.mark_fixed(complaint_id, SUPPORT, note="patched in 2.3.1")
    assert state.status is S.RECTIFIED
    final = await desk.outcome(complaint_id)
    assert final.resolution is not None and final.resolution.outcome is S.RECTIFIED
    assert await ledger.refunds_for("complaint", complaint_id) == []


async def test_r11_fix_after_the_deadline_is_refused(desk: ComplaintDesk, env: WorkflowEnvironment) -> None:
    complaint_id, _ = await file(desk)
    await desk.review(complaint_id, APPROVE)
    await env.sleep(timedelta(days=5, hours=1))
    state = await desk.get(complaint_id)
    assert state.status is S.AWAITING_REMEDY_CHOICE
    await refused("invalid_state", desk.mark_fixed(complaint_id, SUPPORT))


# ----------------------------------------------------------------------------------------------- R12


async def test_r12_unfixed_deficiency_without_a_choice_is_refunded_in_full(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    complaint_id, customer_id = await file(desk, price="49.99")
    await desk.review(complaint_id, APPROVE)
    final = await desk.outcome(complaint_id)
    assert final.status is S.REFUNDED
    assert final.resolution is not None and final.resolution.refund is not None
    assert final.resolution.refund.amount == Money(amount=Decimal("49.99"), currency="EUR")
    types = [e.type for e in final.events]
    assert types.index("remedy_choice_requested") < types.index("remedy_defaulted") < types.index("refunded")
    asked = next(e for e in final.events if e.type == "remedy_choice_requested")
    defaulted = next(e for e in final.events if e.type == "remedy_defaulted")
    assert defaulted.at - asked.at >= POLICY.remedy_choice_window
    assert asked.at >= final.created_at + POLICY.rectify_window
    balance = await ledger.balance(customer_id)
    assert balance.totals == {"EUR": Decimal("49.99")}, "exactly the price: no compensation"


async def test_r12_replacement_by_choice_is_the_same_product(desk: ComplaintDesk, ledger: Ledger) -> None:
    complaint_id, customer_id = await file(desk)
    await desk.review(complaint_id, APPROVE)
    state = await desk.choose_remedy(complaint_id, cust(customer_id), RemedyChoice.REPLACEMENT)
    assert state.remedy_choice is RemedyChoice.REPLACEMENT
    final = await desk.outcome(complaint_id)
    assert final.status is S.REPLACED
    assert final.resolution is not None and final.resolution.replacement is not None
    assert final.resolution.replacement.sku == final.order.product.sku
    assert final.resolution.replacement.value == final.order.price
    assert len(await ledger.replacements_for(complaint_id)) == 1
    assert await ledger.refunds_for("complaint", complaint_id) == []
    assert "remedy_choice_requested" not in [e.type for e in final.events], "chosen before the deadline"


async def test_r12_the_customer_changes_their_mind_a_bounded_number_of_times(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """Each change of the remedy is an event in the history; past `max_remedy_changes` a change is refused
    and recorded nowhere, while the same choice again is answered by the desk without sending an update
    (an accepted update is events in the workflow's history even when it records nothing)."""
    complaint_id, customer_id = await file(desk, policy=POLICY.model_copy(update={"max_remedy_changes": 2}))
    await desk.review(complaint_id, APPROVE)
    choices = [RemedyChoice.REPLACEMENT, RemedyChoice.REFUND, RemedyChoice.REPLACEMENT]
    for choice in choices:  # the first choice and two changes
        await desk.choose_remedy(complaint_id, cust(customer_id), choice)
    before = (await accepted_updates(desk, complaint_id), await desk.get(complaint_id))
    await refused(
        "remedy_changes_exhausted", desk.choose_remedy(complaint_id, cust(customer_id), RemedyChoice.REFUND)
    )
    again = await desk.choose_remedy(complaint_id, cust(customer_id), RemedyChoice.REPLACEMENT)
    assert again.remedy_choice is RemedyChoice.REPLACEMENT and again.remedy_changes == 2
    after = (await accepted_updates(desk, complaint_id), await desk.get(complaint_id))
    assert after == before, "neither the refused change nor the repeated choice reached the history"
    final = await desk.outcome(complaint_id)
    assert final.status is S.REPLACED
    assert [e.type for e in final.events].count("remedy_chosen") == 3


async def test_r12_offered_replacement_must_be_within_tolerance(desk: ComplaintDesk, ledger: Ledger) -> None:
    complaint_id, customer_id = await file(desk, price="50.00")

    def offer(value: str, currency: str = "EUR") -> ReplacementOffer:
        return ReplacementOffer(
            sku="plugin-seo-max", name="SEO Max", value=Money(amount=Decimal(value), currency=currency)
        )

    before = (await accepted_updates(desk, complaint_id), await desk.get(complaint_id))
    for bad in (offer("55.01"), offer("44.99"), offer("50.00", "USD")):
        await refused("replacement_out_of_tolerance", desk.offer_replacement(complaint_id, SUPPORT, bad))
    after = (await accepted_updates(desk, complaint_id), await desk.get(complaint_id))
    assert after == before, "a refused update changes nothing and is not in the history"
    await desk.offer_replacement(complaint_id, SUPPORT, offer("45.00"))
    state = await desk.offer_replacement(complaint_id, SUPPORT, offer("55.00"))
    assert state.replacement_offer == offer("55.00")
    await desk.review(complaint_id, APPROVE)
    await desk.choose_remedy(complaint_id, cust(customer_id), RemedyChoice.REPLACEMENT)
    final = await desk.outcome(complaint_id)
    assert final.status is S.REPLACED
    assert final.resolution is not None and final.resolution.replacement == offer("55.00")
    [issued] = await ledger.replacements_for(complaint_id)
    assert issued.offer.sku == "plugin-seo-max"


async def test_r12_choice_within_the_window_after_the_deadline(
    desk: ComplaintDesk, env: WorkflowEnvironment
) -> None:
    complaint_id, customer_id = await file(desk)
    await desk.review(complaint_id, APPROVE)
    await env.sleep(timedelta(days=6))
    state = await desk.get(complaint_id)
    assert state.status is S.AWAITING_REMEDY_CHOICE
    assert state.remedy_choice_due is not None
    await desk.choose_remedy(complaint_id, cust(customer_id), RemedyChoice.REPLACEMENT)
    final = await desk.outcome(complaint_id)
    assert final.status is S.REPLACED


# ----------------------------------------------------------------------------------------------- R13


async def test_r13_unreviewed_complaint_is_reminded_then_escalated(
    desk: ComplaintDesk, env: WorkflowEnvironment, ledger: Ledger
) -> None:
    complaint_id, customer_id = await file(desk)
    await env.sleep(timedelta(days=3, hours=23))
    assert [m.template for m in await ledger.outbox(complaint_id=complaint_id)] == ["complaint_filed"]
    await env.sleep(timedelta(hours=2))
    outbox = await ledger.outbox(complaint_id=complaint_id)
    assert [m.template for m in outbox] == ["complaint_filed", "deadline_approaching"]
    assert outbox[-1].recipient == "support" and outbox[-1].payload["pending"] == "review"
    assert (await desk.get(complaint_id)).status is S.UNDER_REVIEW

    await env.sleep(timedelta(days=1))
    state = await desk.get(complaint_id)
    assert state.status is S.ESCALATED
    assert (
        state.escalated_at is not None and state.deadline is not None and state.escalated_at >= state.deadline
    )
    assert "complaint_escalated" in [m.template for m in await ledger.outbox(complaint_id=complaint_id)]

    # Still support's to review; an approval past the deadline goes straight to the customer's remedy.
    await desk.review(complaint_id, APPROVE)
    await desk.choose_remedy(complaint_id, cust(customer_id), RemedyChoice.REFUND)
    final = await desk.outcome(complaint_id)
    assert final.status is S.REFUNDED


async def test_r13_escalated_complaint_can_still_be_rejected(
    desk: ComplaintDesk, env: WorkflowEnvironment
) -> None:
    complaint_id, _ = await file(desk)
    await env.sleep(timedelta(days=5, minutes=1))
    assert (await desk.get(complaint_id)).status is S.ESCALATED
    await refused("invalid_state", desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="late"))
    review = Review(actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=DefectRejection.NOT_A_DEFECT)
    assert (await desk.review(complaint_id, review)).status is S.REJECTED


# ----------------------------------------------------------------------------------------------- R14


async def test_r14_customer_withdraws_before_resolution(
    desk: ComplaintDesk, env: WorkflowEnvironment
) -> None:
    under_review, customer_a = await file(desk)
    assert (await desk.withdraw(under_review, cust(customer_a))).status is S.WITHDRAWN

    awaiting_access, customer_b = await file(desk)
    await desk.request_access(awaiting_access, SUPPORT, scope="ssh", reason="reproduce")
    assert (await desk.withdraw(awaiting_access, cust(customer_b))).status is S.WITHDRAWN

    awaiting_choice, customer_c = await file(desk)
    await desk.review(awaiting_choice, APPROVE)
    await env.sleep(timedelta(days=5, hours=1))
    assert (await desk.get(awaiting_choice)).status is S.AWAITING_REMEDY_CHOICE
    assert (await desk.withdraw(awaiting_choice, cust(customer_c))).status is S.WITHDRAWN

    for complaint_id in (under_review, awaiting_access, awaiting_choice):
        final = await desk.outcome(complaint_id)
        assert final.resolution is not None and final.resolution.outcome is S.WITHDRAWN
    await refused("invalid_state", desk.withdraw(under_review, cust(customer_a)))


async def test_r14_only_the_customer_who_ordered_may_withdraw(desk: ComplaintDesk) -> None:
    complaint_id, _ = await file(desk)
    await refused("forbidden_actor", desk.withdraw(complaint_id, cust("somebody-else")))
    await refused("forbidden_actor", desk.withdraw(complaint_id, SUPPORT))
    assert (await desk.get(complaint_id)).status is S.UNDER_REVIEW


# ----------------------------------------------------------------------------------------------- R16


async def test_r16_every_state_change_is_in_the_ledger_with_time_and_actor(
    desk: ComplaintDesk, ledger: Ledger, env: WorkflowEnvironment
) -> None:
    complaint_id, customer_id = await file(desk)
    await desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="reproduce")
    await desk.grant_access(complaint_id, cust(customer_id), credentials())
    await desk.review(complaint_id, APPROVE)
    final = await desk.outcome(complaint_id)
    recorded = await ledger.complaint_events(complaint_id)
    assert recorded == final.events
    assert [e.seq for e in recorded] == list(range(1, len(recorded) + 1))
    actors = {e.type: e.actor for e in recorded}
    assert actors["filed"] == f"customer:{customer_id}"
    assert actors["access_requested"] == "support:alice"
    assert actors["access_granted"] == f"customer:{customer_id}"
    assert actors["refunded"] == "system:refund-desk"
    record = await ledger.get_complaint(complaint_id)
    assert record is not None and record.state.status is S.REFUNDED
    assert record.state.resolution == final.resolution


async def test_r16_refund_is_issued_once_whatever_the_repeats(desk: ComplaintDesk, ledger: Ledger) -> None:
    """The workflow's refund activity, run again and again (as retries would), credits the balance once."""
    from activities import LedgerActivities
    from ledger.records import RefundIssue

    complaint_id, customer_id = await file(desk, price="20.00")
    await desk.review(complaint_id, APPROVE)
    final = await desk.outcome(complaint_id)
    assert final.resolution is not None and final.resolution.refund is not None
    activities = LedgerActivities(ledger, desk.keyring)
    again = RefundIssue(
        source_kind="complaint",
        source_id=complaint_id,
        customer_id=customer_id,
        order_id=final.order.order_id,
        amount=final.order.price,
        actor="system:refund-desk",
        at=final.resolution.refund.issued_at,
    )
    repeats = [await activities.issue_refund(again) for _ in range(3)]
    assert {r.refund_id for r in repeats} == {
        (await ledger.refunds_for("complaint", complaint_id))[0].refund_id
    }
    assert not any(r.created for r in repeats)
    assert (await ledger.balance(customer_id)).totals == {"EUR": Decimal("20.00")}


async def test_r16_an_event_and_its_notice_are_written_by_one_activity_once(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """Each transition is one ledger activity, its notice included, and a retried write of it
    adds neither an event nor a notice."""
    from ledger.records import ComplaintTransition

    complaint_id, customer_id = await file(desk)
    await desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="reproduce")
    await desk.grant_access(complaint_id, cust(customer_id), credentials())
    await desk.review(complaint_id, APPROVE)
    final = await desk.outcome(complaint_id)
    history = await desk.client.get_workflow_handle(workflow_id_of(complaint_id)).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert "notify" not in scheduled
    assert scheduled.count("record_transition") == len(final.events)
    outbox = await ledger.outbox(complaint_id=complaint_id)
    assert sorted(m.template for m in outbox) == [
        "access_requested",
        "choose_remedy",
        "complaint_filed",
        "deadline_approaching",
        "refund_issued",
    ]
    last = final.events[-1]
    again = ComplaintTransition(
        state=final.model_copy(update={"events": []}),
        event=last,
        notifications=[outbox[-1].model_copy()],
    )
    record = await ledger.get_complaint(complaint_id)
    assert record is not None
    for _ in range(2):
        await ledger.record_transition(record.workflow_id, record.run_id, again)
    assert await ledger.complaint_events(complaint_id) == final.events
    assert [m.dedupe_key for m in await ledger.outbox(complaint_id=complaint_id)] == [
        m.dedupe_key for m in outbox
    ]


# ----------------------------------------------------------------------------------------------- R15


async def test_r15_second_open_defect_complaint_on_an_order_is_refused(desk: ComplaintDesk) -> None:
    order = software_order()
    # Waiting for the first outcome lets the test server's clock run ahead, by years when it has nothing
    # else to do: keep R3 out of the way of what this test is about.
    policy = POLICY.model_copy(update={"claim_window": timedelta(days=365 * 100)})
    first = await desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=policy)
    await refused(
        "complaint_already_open",
        desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=policy),
    )
    await desk.withdraw(first.complaint_id, customer(order))
    await desk.outcome(first.complaint_id)
    second = await desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=policy)
    assert second.complaint_id != first.complaint_id, "once closed, a new complaint may be filed"
    assert (await desk.get(first.complaint_id)).status is S.WITHDRAWN, "the old one is still readable"
    assert (await desk.get(second.complaint_id)).status is S.UNDER_REVIEW


# ------------------------------------------------------------------------------------- visibility


async def test_search_attributes_follow_each_transition(
    desk: ComplaintDesk, env: WorkflowEnvironment
) -> None:
    complaint_id, customer_id = await file(desk)
    await desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="reproduce")
    await env.sleep(timedelta(hours=6))
    state = await desk.grant_access(complaint_id, cust(customer_id), credentials())
    await desk.review(complaint_id, APPROVE)
    described = await desk.client.get_workflow_handle(workflow_id_of(complaint_id)).describe()
    attributes = described.typed_search_attributes
    assert attributes.get(search_attributes.COMPLAINT_STATUS) == "rectifying"
    assert attributes.get(search_attributes.COMPLAINT_KIND) == "major_defect"
    assert attributes.get(search_attributes.CUSTOMER_ID) == customer_id
    assert attributes.get(search_attributes.ORDER_ID) == state.order.order_id
    assert attributes.get(search_attributes.COMPLAINT_DEADLINE) == state.deadline
