"""Bounded histories: a defect complaint whose run reaches `history_events_per_run` continues as new, with
the complaint carried over, from whichever phase it was in; every run's history replays.

Support grows a complaint's history for as long as it stays open (each offer is an event), so the tests
offer replacements until the run continues, then let the policy finish the complaint in the new run. The
time-skipping server runs the real worker, activities and ledger; the last test races updates against
the continuation on the real dev server.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import ComplaintState, FileDefectComplaint, OfferReplacement, Review
from policy.ids import new_complaint_id, workflow_id_of
from policy.models import (
    ComplaintKind,
    ComplaintStatus,
    Money,
    RemedyChoice,
    ReplacementOffer,
    ReviewDecision,
)
from starter.desk import ComplaintDesk
from starter.desk.codec import encrypting_converter
from tests.factories import DESCRIPTION, PAYLOAD_KEYS, POLICY, SUPPORT, credentials, customer, software_order
from tests.record_histories import continued_from, customer_actor, runs_of
from worker import WORKFLOWS, build_worker, workflow_runner
from workflows.defect_complaint import DefectComplaintWorkflow

S = ComplaintStatus
BOUND = 100
BOUNDED = POLICY.model_copy(update={"history_events_per_run": BOUND})
APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="reproduced")
MOST_OFFERS = 40
"""Far more offers than a run of `BOUND` events holds (each is about a dozen events)."""


async def file(desk: ComplaintDesk) -> tuple[str, str]:
    order = software_order()
    state = await desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=BOUNDED)
    return state.complaint_id, order.customer_id


def offer(n: int) -> ReplacementOffer:
    return ReplacementOffer(
        sku=f"plugin-{n}", name=f"Plugin {n}", value=Money(amount=Decimal("50.00"), currency="EUR")
    )


async def latest_run(desk: ComplaintDesk, complaint_id: str) -> str:
    return (await desk.client.get_workflow_handle(workflow_id_of(complaint_id)).describe()).run_id


async def offer_until_continued(desk: ComplaintDesk, complaint_id: str) -> tuple[ComplaintState, int]:
    """Offer replacements until the complaint's run has continued as new; returns the complaint as the
    last offer left it, and the number of offers made."""
    first_run = await latest_run(desk, complaint_id)
    for n in range(1, MOST_OFFERS + 1):
        state = await desk.offer_replacement(complaint_id, SUPPORT, offer(n))
        if await latest_run(desk, complaint_id) != first_run:
            return state, n
    raise AssertionError(f"{MOST_OFFERS} offers and the run never continued as new")


async def every_run_replays(desk: ComplaintDesk, complaint_id: str) -> list[WorkflowHistory]:
    """Each run's history of the complaint, replayed against today's workflow code."""
    runs = await runs_of(desk.client, workflow_id_of(complaint_id))
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=encrypting_converter(PAYLOAD_KEYS),
        workflow_runner=workflow_runner(),
    )
    for history in runs:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure
    return runs


def types_of(state: ComplaintState) -> list[str]:
    return [event.type for event in state.events]


async def test_a_run_past_its_bound_continues_as_new_with_the_complaint_carried_over(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """Rectifying, with access granted and the deadline moved by it: after the continuation the complaint
    is the same (trail, deadline, pause, credentials), the projection still names the first run, updates
    reach the new run, and the deadline set before still ends it with one refund."""
    complaint_id, customer_id = await file(desk)
    first_run = await latest_run(desk, complaint_id)
    await desk.review(complaint_id, APPROVE)
    await desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="reproduce")
    granted = await desk.grant_access(complaint_id, customer_actor(customer_id), credentials())
    before, offers = await offer_until_continued(desk, complaint_id)
    assert 2 < offers < MOST_OFFERS, offers

    now = await desk.get(complaint_id)
    assert now.model_dump(exclude={"events"}) == before.model_dump(exclude={"events"})
    assert now.events == before.events, "the trail carried over, each event once"
    assert [e.seq for e in now.events] == list(range(1, len(now.events) + 1))
    assert now.deadline == granted.deadline and now.paused == granted.paused > timedelta(0)
    assert now.access is not None and now.access.credentials_ref == granted.access.credentials_ref  # type: ignore[union-attr]
    record = await ledger.get_complaint(complaint_id, events=False)
    assert record is not None and record.run_id == first_run, "the projection names the first run"

    chosen = await desk.choose_remedy(complaint_id, customer_actor(customer_id), RemedyChoice.REFUND)
    assert chosen.remedy_choice is RemedyChoice.REFUND, "the update reached the run continued as"
    final = await desk.outcome(complaint_id)
    assert final.status is S.REFUNDED
    assert final.resolution is not None and final.resolution.refund is not None
    assert final.resolution.refund.issued_at >= now.deadline  # type: ignore[operator]
    assert len(await ledger.refunds_for("complaint", complaint_id)) == 1
    assert types_of(final).count("filed") == 1 and types_of(final).count("access_granted") == 1

    runs = await every_run_replays(desk, complaint_id)
    assert len(runs) == 2 and continued_from(runs[1]), "one continuation, and the second run knows it"
    assert len(runs[0].events) < BOUND + 30, "the first run stopped soon after reaching the bound"


async def test_a_run_continued_while_awaiting_access_still_counts_silence_as_refusal(
    desk: ComplaintDesk,
) -> None:
    """R9/R10 across runs: the answer stays due when it was, and silence past it ends the complaint."""
    complaint_id, _ = await file(desk)
    asked = await desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="reproduce")
    await offer_until_continued(desk, complaint_id)
    assert (await desk.get(complaint_id)).status is S.AWAITING_ACCESS
    final = await desk.outcome(complaint_id)
    assert final.status is S.ACCESS_REFUSED
    assert final.resolution is not None and final.resolution.reason_code == "access_not_answered"
    assert asked.access is not None and final.events[-1].at >= asked.access.answer_due
    await every_run_replays(desk, complaint_id)


async def test_a_run_continued_while_escalated_waits_for_supports_decision(
    desk: ComplaintDesk, env: WorkflowEnvironment
) -> None:
    """R13 across runs: escalated once, and the new run waits for support as the old one did."""
    complaint_id, customer_id = await file(desk)
    await env.sleep(BOUNDED.rectify_window + timedelta(minutes=1))
    assert (await desk.get(complaint_id)).status is S.ESCALATED
    await offer_until_continued(desk, complaint_id)
    await env.sleep(timedelta(days=30))
    assert (await desk.get(complaint_id)).status is S.ESCALATED, "nothing but support's decision ends it"
    await desk.review(complaint_id, APPROVE)
    await desk.choose_remedy(complaint_id, customer_actor(customer_id), RemedyChoice.REPLACEMENT)
    final = await desk.outcome(complaint_id)
    assert final.status is S.REPLACED
    assert types_of(final).count("escalated") == 1
    await every_run_replays(desk, complaint_id)


async def test_a_run_continued_while_the_customer_chooses_keeps_the_choice_due_when_it_was(
    desk: ComplaintDesk, env: WorkflowEnvironment
) -> None:
    """R12 across runs: the choice is asked for once, and its default applies at the same instant."""
    complaint_id, _ = await file(desk)
    await desk.review(complaint_id, APPROVE)
    await env.sleep(BOUNDED.rectify_window + timedelta(minutes=1))
    asked = await desk.get(complaint_id)
    assert asked.status is S.AWAITING_REMEDY_CHOICE and asked.remedy_choice_due is not None
    await offer_until_continued(desk, complaint_id)
    final = await desk.outcome(complaint_id)
    assert final.status is S.REFUNDED and final.remedy_choice_due == asked.remedy_choice_due
    assert types_of(final).count("remedy_choice_requested") == 1
    assert types_of(final).count("remedy_defaulted") == 1
    assert final.events[-1].at >= asked.remedy_choice_due
    await every_run_replays(desk, complaint_id)


async def test_a_workflow_started_with_a_carried_state_is_refused(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """Only a run Temporal started as a continuation may carry a complaint's state: one started directly
    with a forged state (a remedy already chosen, past its deadline) fails before it writes anything."""
    other, order = software_order(), software_order()
    real = await desk.file_defect_complaint(other, DESCRIPTION, filed_by=customer(other), policy=BOUNDED)
    complaint_id = new_complaint_id(order.order_id, ComplaintKind.MAJOR_DEFECT)
    forged = real.model_copy(
        update={"complaint_id": complaint_id, "order": order, "status": S.AWAITING_REMEDY_CHOICE}
    )
    forged.remedy_choice = RemedyChoice.REFUND
    filing = FileDefectComplaint(
        complaint_id=complaint_id,
        order=order,
        description=DESCRIPTION,
        filed_by=customer(order),
        policy=BOUNDED,
        continued=forged,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await desk.client.execute_workflow(
            DefectComplaintWorkflow.run,
            filing,
            id=workflow_id_of(complaint_id),
            task_queue=desk.task_queue,
        )
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "not_a_continuation", cause
    assert await ledger.get_complaint(complaint_id) is None
    assert await ledger.refunds_for("complaint", complaint_id) == []


async def test_offers_racing_the_continuation_on_the_dev_server_each_land_once(
    dev_server: WorkflowEnvironment, ledger: Ledger, keyring: VaultKeyring
) -> None:
    """Thirty offers sent at once: runs continue as new among them, and each offer is in the trail once,
    none lost to a run that ended as it arrived; the chain replays, and the complaint ends in its last run."""
    queue = f"can-{uuid.uuid4().hex[:8]}"
    desk = ComplaintDesk(client=dev_server.client, ledger=ledger, keyring=keyring, task_queue=queue)
    async with build_worker(dev_server.client, ledger, keyring, queue):
        complaint_id, _ = await file(desk)
        await desk.review(complaint_id, APPROVE)
        skus = [offer(n).sku for n in range(1, 31)]
        await asyncio.gather(*(desk.offer_replacement(complaint_id, SUPPORT, offer(n)) for n in range(1, 31)))
        now = await desk.get(complaint_id)
        offered = [e.detail["sku"] for e in now.events if e.type == "replacement_offered"]
        assert sorted(offered) == sorted(skus), "each offer once"
        assert [e.seq for e in now.events] == list(range(1, len(now.events) + 1))
        await desk.mark_fixed(complaint_id, SUPPORT, note="patched")
        final = await asyncio.wait_for(desk.outcome(complaint_id), timeout=60)
    assert final.status is S.RECTIFIED
    runs = await every_run_replays(desk, complaint_id)
    assert len(runs) >= 2, [len(run.events) for run in runs]


async def test_an_update_handled_before_the_continuation_is_not_applied_again_after_it(
    desk: ComplaintDesk,
) -> None:
    """A client told its update was aborted (it raced the continuation) sends it again with the same id;
    the run it continued as knows the id and answers with the complaint as it stands, acting again on
    nothing."""
    complaint_id, _ = await file(desk)
    await desk.review(complaint_id, APPROVE)
    await offer_until_continued(desk, complaint_id)
    first, _ = await runs_of(desk.client, workflow_id_of(complaint_id))
    handled = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        for e in first.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    before = await desk.get(complaint_id)
    handle = desk.client.get_workflow_handle(workflow_id_of(complaint_id))
    again = await handle.execute_update(
        DefectComplaintWorkflow.offer_replacement,
        OfferReplacement(actor=SUPPORT, offer=offer(99)),
        id=handled[-1],
    )
    assert again.events == before.events and again.replacement_offer == before.replacement_offer
    fresh = await handle.execute_update(
        DefectComplaintWorkflow.offer_replacement, OfferReplacement(actor=SUPPORT, offer=offer(99))
    )
    assert fresh.replacement_offer == offer(99), "an update with a new id still acts"
