"""What systems report (R9, R10, R11, R14) as the `report` signal, on the time-skipping server with a real
worker and ledger: each report does what its update does, under the same checks; a refusal is in the trail
with its sender and a notice to support; one outcome, once, whatever is repeated or raced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from policy.complaint import ComplaintState, Review
from policy.ids import workflow_id_of
from policy.models import Actor, ComplaintKind, ComplaintStatus, ReviewDecision, Role
from policy.refusals import FORBIDDEN_ACTOR, INVALID_STATE, PolicyRefusal
from policy.reports import Report, ReportedAction
from starter.desk import ComplaintDesk, ComplaintNotFound
from tests.factories import (
    CLAIM,
    DESCRIPTION,
    POLICY,
    SECRET,
    SUPPORT,
    credentials,
    customer,
    history_text,
    number_order,
    software_order,
)
from workflows.refund_claim import RefundClaimWorkflow

S = ComplaintStatus
APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE)
DEPLOY_BOT = Actor(role=Role.SUPPORT, id="deploy-bot")


async def defect(desk: ComplaintDesk, ledger: Ledger) -> tuple[str, Actor]:
    order = software_order()
    await ledger.record_order(order)
    state = await desk.file_defect_complaint(order, DESCRIPTION, customer(order), POLICY)
    return state.complaint_id, customer(order)


async def settled(
    desk: ComplaintDesk, complaint_id: str, done: Callable[[ComplaintState], bool]
) -> ComplaintState:
    """The complaint as the ledger shows it once `done` holds (the worker takes a signal a moment later)."""
    for _ in range(500):
        state = await desk.get(complaint_id)
        if done(state):
            return state
        await asyncio.sleep(0.02)
    raise AssertionError(f"{complaint_id} never got there: {[e.type for e in state.events]}")


def types(state: ComplaintState) -> list[str]:
    return [event.type for event in state.events]


async def test_r11_a_fix_reported_by_signal_rectifies_the_complaint(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    cid, _ = await defect(desk, ledger)
    await desk.review(cid, APPROVE)
    report_id = await desk.report(cid, DEPLOY_BOT, ReportedAction.FIXED, note="2.3.1 deployed")
    assert report_id.startswith("rpt_")
    final = await settled(desk, cid, lambda s: s.is_final)
    assert final.status is S.RECTIFIED and final.resolution is not None
    assert types(final) == ["filed", "deficiency_approved", "rectified"]
    fixed = final.events[-1]
    assert fixed.actor == "support:deploy-bot" and fixed.detail["note"] == "2.3.1 deployed"
    assert [n.template for n in await ledger.outbox(complaint_id=cid)][-1] == "defect_rectified"


async def test_r9_a_grant_reported_while_none_was_requested_is_refused_in_the_trail_with_its_sender(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    cid, owner = await defect(desk, ledger)
    report_id = await desk.report(cid, owner, ReportedAction.ACCESS_GRANTED, credentials=credentials())
    state = await settled(desk, cid, lambda s: "report_refused" in types(s))
    assert state.status is S.UNDER_REVIEW and state.access is None
    refused = state.events[-1]
    assert refused.actor == str(owner)
    assert refused.detail["action"] == "grant_access" and refused.detail["reason_code"] == INVALID_STATE
    assert refused.detail["report_id"] == report_id and "under_review" in refused.detail["reason"]
    notices = [n for n in await ledger.outbox(complaint_id=cid) if n.template == "report_refused"]
    assert [(n.recipient, n.payload) for n in notices] == [
        ("support", {"action": "grant_access", "reason_code": INVALID_STATE, "by": str(owner)})
    ]


async def test_r11_the_same_report_sent_twice_is_taken_once_another_id_is_another_report(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """A retrying sender repeats its id: one trail entry. Another id is another report (and another
    entry), so the first two were not merely lost."""
    cid, _ = await defect(desk, ledger)
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    for report_id in ("rpt_fix-1", "rpt_fix-1", "rpt_fix-2"):
        # a fix while access is awaited: refused (R10 pauses the clock; support waits for the answer)
        assert await desk.report(cid, DEPLOY_BOT, ReportedAction.FIXED, report_id=report_id) == report_id
    state = await settled(desk, cid, lambda s: types(s).count("report_refused") >= 2)
    await asyncio.sleep(0.3)  # time for a third entry, were there one
    state = await desk.get(cid)
    refused = [e.detail["report_id"] for e in state.events if e.type == "report_refused"]
    assert refused == ["rpt_fix-1", "rpt_fix-2"], types(state)
    assert state.status is S.AWAITING_ACCESS


async def test_r11_a_fix_reported_while_the_same_fix_is_sent_as_an_update_ends_in_one_outcome(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    cid, _ = await defect(desk, ledger)
    await desk.review(cid, APPROVE)
    update, report = await asyncio.gather(
        desk.mark_fixed(cid, SUPPORT, note="by hand"),
        desk.report(cid, DEPLOY_BOT, ReportedAction.FIXED, note="by the pipeline"),
        return_exceptions=True,
    )
    assert isinstance(report, str), report
    if isinstance(update, PolicyRefusal):  # the report came first
        assert update.code == INVALID_STATE, update
    else:
        assert isinstance(update, ComplaintState) and update.status is S.RECTIFIED, update
    final = await settled(desk, cid, lambda s: s.is_final)
    await asyncio.sleep(0.3)
    final = await desk.get(cid)
    assert types(final) == ["filed", "deficiency_approved", "rectified"]


async def test_r9_a_grant_reported_after_the_same_grant_by_update_is_not_recorded_again(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    cid, owner = await defect(desk, ledger)
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    granted = await desk.grant_access(cid, owner, credentials())
    assert granted.access is not None and granted.access.granted
    await desk.report(cid, owner, ReportedAction.ACCESS_GRANTED, credentials=credentials())
    await desk.report(cid, owner, ReportedAction.WITHDRAWN, report_id="rpt_then-withdrawn")
    final = await settled(desk, cid, lambda s: s.is_final)
    assert types(final) == ["filed", "access_requested", "access_granted", "withdrawn"]


async def test_r9_credentials_reported_by_signal_are_sealed_and_reach_the_vault(
    desk: ComplaintDesk, ledger: Ledger, env: WorkflowEnvironment
) -> None:
    cid, owner = await defect(desk, ledger)
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    await desk.report(cid, owner, ReportedAction.ACCESS_GRANTED, credentials=credentials())
    state = await settled(desk, cid, lambda s: "access_granted" in types(s))
    assert state.status is S.UNDER_REVIEW and state.access is not None and state.access.granted
    ref = state.events[-1].detail["credentials_ref"]
    assert (await desk.reveal_credentials(ref)).secret.get_secret_value() == SECRET
    history = await env.client.get_workflow_handle(workflow_id_of(cid)).fetch_history()
    assert "rpt_" in history_text(history)  # the report is in the history, its credentials sealed
    assert SECRET not in history.to_json() and SECRET not in history_text(history)


async def test_r10_an_access_refusal_reported_by_signal_ends_the_complaint(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    cid, owner = await defect(desk, ledger)
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    await desk.report(cid, owner, ReportedAction.ACCESS_REFUSED)
    final = await settled(desk, cid, lambda s: s.is_final)
    assert final.status is S.ACCESS_REFUSED and final.resolution is not None
    assert final.resolution.reason_code == "access_refused" and types(final)[-1] == "access_refused"


async def test_r14_a_claim_withdrawn_by_signal_ends_withdrawn(desk: ComplaintDesk, ledger: Ledger) -> None:
    order = number_order()
    await ledger.record_order(order)
    filed = await desk.file(order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM, customer(order))
    await desk.report(filed.complaint_id, customer(order), ReportedAction.WITHDRAWN, note="it came")
    final = await settled(desk, filed.complaint_id, lambda s: s.is_final)
    assert final.status is S.WITHDRAWN and types(final) == ["filed", "withdrawn"]
    assert final.events[-1].actor == str(customer(order))


async def test_a_claim_refuses_a_fix_at_the_desk_and_records_one_sent_around_it(
    desk: ComplaintDesk, ledger: Ledger, env: WorkflowEnvironment
) -> None:
    order = number_order()
    await ledger.record_order(order)
    filed = await desk.file(order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM, customer(order))
    cid = filed.complaint_id
    with pytest.raises(PolicyRefusal) as refused:
        await desk.report(cid, SUPPORT, ReportedAction.FIXED)
    assert refused.value.code == INVALID_STATE and "has no mark fixed" in refused.value.message
    # A client of Temporal's own (with the payload keys) signals the workflow directly.
    report = Report(report_id="rpt_direct", complaint_id=cid, action=ReportedAction.FIXED, actor=SUPPORT)
    await env.client.get_workflow_handle(workflow_id_of(cid)).signal(RefundClaimWorkflow.report, report)
    state = await settled(desk, cid, lambda s: "report_refused" in types(s))
    assert state.events[-1].detail["reason_code"] == INVALID_STATE and state.status is S.UNDER_REVIEW


async def test_the_desk_refuses_at_once_what_the_projection_shows_for_certain(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    cid, owner = await defect(desk, ledger)
    with pytest.raises(ComplaintNotFound):
        await desk.report("ord-none.major_defect.0000abcd", SUPPORT, ReportedAction.FIXED)
    stranger = Actor(role=Role.CUSTOMER, id="cust-stranger")
    with pytest.raises(ComplaintNotFound):
        await desk.report(cid, stranger, ReportedAction.WITHDRAWN)
    with pytest.raises(PolicyRefusal) as wrong_role:
        await desk.report(cid, owner, ReportedAction.FIXED)
    assert wrong_role.value.code == FORBIDDEN_ACTOR
    await desk.withdraw(cid, owner)
    with pytest.raises(PolicyRefusal) as ended:
        await desk.report(cid, DEPLOY_BOT, ReportedAction.FIXED)
    assert ended.value.code == INVALID_STATE and "already withdrawn" in ended.value.message
    assert types(await desk.get(cid)) == ["filed", "withdrawn"]


async def test_r11_a_report_repeated_after_a_continue_as_new_is_still_taken_once(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """The run that continues hands its report ids over: the same report sent to the new run is ignored,
    while another one is taken (and so the new run does take reports)."""
    from tests.test_continue_as_new import BOUNDED, latest_run, offer_until_continued

    order = software_order()
    await ledger.record_order(order)
    cid = (await desk.file_defect_complaint(order, DESCRIPTION, customer(order), BOUNDED)).complaint_id
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    await desk.report(cid, DEPLOY_BOT, ReportedAction.FIXED, report_id="rpt_before")  # refused: awaiting
    await settled(desk, cid, lambda s: "report_refused" in types(s))
    await desk.grant_access(cid, customer(order), credentials())
    first_run = await latest_run(desk, cid)
    await offer_until_continued(desk, cid)
    assert await latest_run(desk, cid) != first_run
    await desk.request_access(cid, SUPPORT, scope="ssh again", reason="reproduce again")
    for report_id in ("rpt_before", "rpt_after"):
        await desk.report(cid, DEPLOY_BOT, ReportedAction.FIXED, report_id=report_id)
    state = await settled(desk, cid, lambda s: types(s).count("report_refused") >= 2)
    await asyncio.sleep(0.3)
    state = await desk.get(cid)
    refused = [e.detail["report_id"] for e in state.events if e.type == "report_refused"]
    assert refused == ["rpt_before", "rpt_after"], refused


async def test_r16_reports_taken_as_said_still_bound_the_run_s_history(
    desk: ComplaintDesk, ledger: Ledger
) -> None:
    """A panel that reports the same grant again and again records nothing more, yet every signal is in
    the history: the run continues as new at its bound rather than grow until Temporal ends it."""
    from tests.test_continue_as_new import BOUNDED, latest_run

    order = software_order()
    await ledger.record_order(order)
    cid = (await desk.file_defect_complaint(order, DESCRIPTION, customer(order), BOUNDED)).complaint_id
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    await desk.grant_access(cid, customer(order), credentials())
    trail = types(await desk.get(cid))
    first_run = await latest_run(desk, cid)
    for n in range(BOUNDED.history_events_per_run):
        report_id = "rpt_same" if n % 2 else f"rpt_{n}"  # a retry, or the grant in effect already
        await desk.report(
            cid,
            customer(order),
            ReportedAction.ACCESS_GRANTED,
            credentials=credentials(),
            report_id=report_id,
        )
        if await latest_run(desk, cid) != first_run:
            break
    else:
        raise AssertionError("the run never continued as new")
    assert types(await desk.get(cid)) == trail  # nothing recorded for any of them
