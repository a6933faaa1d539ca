"""Record the main scenarios' histories into tests/histories/ for the replay test.

One file per scenario, named `<family><name>.json` after the workflow it runs: `defect_` (a major-defect
complaint), `claim_` (a claim about a rented number) and `activation_` (a number waiting for its SMS).

    python -m tests.record_histories                      # every scenario that has no history yet
    python -m tests.record_histories activation_ claim_   # ... of those, the ones named so
    python -m tests.record_histories --replace claim_withdrawn   # record existing ones again

A history that exists is kept: a run only adds the missing ones, unless `--replace` is given with prefixes
that name the files to record again. The histories in `PREVIOUS_RELEASE` are never written at all: they
were recorded by the release before `workflow.patched("intake-in-workflow")`, and prove that today's
DefectComplaintWorkflow still replays complaints started then; today's code cannot record them again.

Run it to add a scenario or after an intended, compatible change to a workflow; never to make a failing
replay pass: that failure means running complaints would break. A history that takes a patch's new branch
is named in that patch's docstring in `workflows/patches.py` (tests/test_patches.py checks its marker).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import struct
import tempfile
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy import refusals
from policy.activation import ActivationState
from policy.complaint import ComplaintState, Review
from policy.evidence import EvidenceFile
from policy.ids import activation_workflow_id, workflow_id_of
from policy.models import (
    Actor,
    ClaimRejection,
    ComplaintKind,
    ComplaintStatus,
    DefectRejection,
    Money,
    Order,
    RemedyChoice,
    ReplacementOffer,
    ReviewDecision,
    Role,
)
from policy.refusals import PolicyRefusal
from policy.reports import ReportedAction
from policy.settings import PolicySnapshot
from starter.binaries import tool_path
from starter.desk import ComplaintDesk, Unresponsive, register_search_attributes
from starter.desk.codec import encrypting_converter
from tests.conftest import QUIET_RUNTIME, TimeSkippingDesk, migrated_ledger
from tests.factories import (
    BACKEND,
    CLAIM,
    DESCRIPTION,
    PAYLOAD_KEYS,
    POLICY,
    SUPPORT,
    credentials,
    customer,
    number_order,
    software_order,
)
from worker import WORKFLOWS, build_worker

HISTORIES = Path(__file__).parent / "histories"
APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="reproduced")
PHONE = "+447700900123"
SERVICE = "whatsapp"

Scenario = Callable[[ComplaintDesk, WorkflowEnvironment, str, str], Awaitable[None]]
"""What happens to a filed complaint: (desk, env, complaint id, customer id)."""

ActivationScenario = Callable[[ComplaintDesk, WorkflowEnvironment, ActivationState], Awaitable[None]]
"""What happens to a started activation while its number waits."""


# ------------------------------------------------------------------------------------ defect complaints


async def refunded_by_default_after_access(
    desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str
) -> None:
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    await env.sleep(timedelta(days=1))
    await desk.grant_access(cid, customer_actor(cust), credentials())
    await desk.review(cid, APPROVE)


async def replaced_with_offer(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    offer = ReplacementOffer(
        sku="plugin-seo-max", name="SEO Max", value=Money(amount=Decimal("52.00"), currency="EUR")
    )
    await desk.review(cid, APPROVE)
    await desk.offer_replacement(cid, SUPPORT, offer)
    await desk.choose_remedy(cid, customer_actor(cust), RemedyChoice.REPLACEMENT)


async def replacement_chosen_twice(
    desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str
) -> None:
    """The customer's client sends the same choice again (a retry): it is answered, and not recorded."""
    await replaced_with_offer(desk, env, cid, cust)
    again = await desk.choose_remedy(cid, customer_actor(cust), RemedyChoice.REPLACEMENT)
    expect([e.type for e in again.events].count("remedy_chosen") == 1, again.events)


BOUNDED = POLICY.model_copy(update={"history_events_per_run": 100})
"""The policy of the scenario that reaches its history's bound: the least the setting allows."""


async def continued_as_new(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    """Support offers one replacement after another until the run's history reaches its bound and it
    continues as new; the customer then takes the last offer, which only the new run can know of."""
    await desk.review(cid, APPROVE)
    handle = desk.client.get_workflow_handle(workflow_id_of(cid))
    first_run = (await handle.describe()).run_id
    for n in range(1, 40):
        offer = ReplacementOffer(
            sku=f"plugin-{n}", name=f"Plugin {n}", value=Money(amount=Decimal("50.00"), currency="EUR")
        )
        await desk.offer_replacement(cid, SUPPORT, offer)
        if (await handle.describe()).run_id != first_run:
            break
    expect((await handle.describe()).run_id != first_run, "the run never continued as new")
    chosen = await desk.choose_remedy(cid, customer_actor(cust), RemedyChoice.REPLACEMENT)
    expect(chosen.replacement_offer == offer, chosen)


async def rectified(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await desk.review(cid, APPROVE)
    await env.sleep(timedelta(days=2))
    await desk.mark_fixed(cid, SUPPORT, note="patched")


async def credentials_revealed(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    """Support reveals the credentials the customer granted (R9), recorded in the trail, then fixes it."""
    await desk.review(cid, APPROVE)
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    await desk.grant_access(cid, customer_actor(cust), credentials())
    revealed = await desk.reveal_granted_credentials(cid, SUPPORT)
    expect(revealed.recorded.type == "credentials_revealed", revealed.recorded)
    await desk.mark_fixed(cid, SUPPORT, note="patched over ssh")


async def access_silence(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")


async def escalated_then_rejected(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await env.sleep(timedelta(days=5, hours=1))
    reject = Review(
        actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=DefectRejection.USER_API_MISUSE
    )
    await desk.review(cid, reject)


async def withdrawn_while_choosing(
    desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str
) -> None:
    await desk.review(cid, APPROVE)
    await env.sleep(timedelta(days=5, hours=1))
    await desk.withdraw(cid, customer_actor(cust))


async def fixed_by_report(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    """A deployment pipeline reports the fix as a signal (R11), twice with one id, as a retry sends it."""
    await desk.review(cid, APPROVE)
    await env.sleep(timedelta(days=1))
    pipeline = Actor(role=Role.SUPPORT, id="deploy-bot")
    for _ in range(2):
        await desk.report(
            cid, pipeline, ReportedAction.FIXED, note="2.3.1 deployed", report_id="rpt_deploy-231"
        )
    fixed = await settled(desk, cid, lambda state: state.is_final)
    expect([e.type for e in fixed.events] == ["filed", "deficiency_approved", "rectified"], fixed.events)


async def report_refused(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    """A hosting panel reports access granted when none was requested (R9): refused, in the trail; the
    same report again is not recorded again; then the customer reports access refused once it is asked."""
    owner = customer_actor(cust)
    for _ in range(2):
        await desk.report(
            cid, owner, ReportedAction.ACCESS_GRANTED, credentials=credentials(), report_id="rpt_panel-1"
        )
    await settled(desk, cid, lambda state: "report_refused" in [e.type for e in state.events])
    await desk.request_access(cid, SUPPORT, scope="ssh", reason="reproduce")
    await desk.report(cid, owner, ReportedAction.ACCESS_REFUSED, report_id="rpt_panel-2")
    ended = await settled(desk, cid, lambda state: state.is_final)
    trail = [e.type for e in ended.events]
    expect(trail == ["filed", "report_refused", "access_requested", "access_refused"], trail)


# ---------------------------------------------------------------------------------- claims on a number


async def approved(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await env.sleep(timedelta(hours=3))
    await desk.review(cid, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="provider log empty"))


async def number_found_valid(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    reject = Review(
        actor=SUPPORT,
        decision=ReviewDecision.REJECT,
        reason_code=ClaimRejection.NUMBER_VALID,
        note="the screenshot shows a typo in the number, not a refusal",
    )
    await desk.review(cid, reject)


async def escalated_then_approved(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await env.sleep(timedelta(days=5, hours=1))
    escalated = await settled(desk, cid, lambda state: state.status is ComplaintStatus.ESCALATED)
    expect([e.type for e in escalated.events] == ["filed", "support_reminded", "escalated"], escalated)
    await desk.review(cid, Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="late, but right"))


async def withdrawn(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await env.sleep(timedelta(hours=2))
    await desk.withdraw(cid, customer_actor(cust), note="the code came after all")


async def withdrawn_before_filing(stage: Stage) -> Final:
    """The customer withdraws while the claim's R5 check (its first activity) waits: a worker with the
    workflows but no activities accepts the withdrawal, which waits for "filed"; then a whole worker runs
    the activities. Its own task queue, so the shared worker runs none of it."""
    queue = f"record-early-{uuid.uuid4().hex[:8]}"
    desk = dataclasses.replace(stage.desk, task_queue=queue, patience=timedelta(seconds=2))
    order = await stage.order(number_order())
    owner = customer(order)
    # Nothing cached, so no task waits on this worker's sticky queue once it is gone.
    async with Worker(stage.env.client, task_queue=queue, workflows=list(WORKFLOWS), max_cached_workflows=0):
        filed = await desk.file(order, ComplaintKind.SMS_NOT_RECEIVED, CLAIM, owner)
        try:
            await desk.withdraw(filed.complaint_id, owner)
        except Unresponsive:
            pass  # accepted, and waiting for the R5 check and "filed"
        else:
            raise AssertionError("the withdrawal went through before the claim was filed")
    async with build_worker(stage.env.client, stage.ledger, desk.keyring, queue, inputs_sealed=False):
        final = await desk.outcome(filed.complaint_id)
    expect([e.type for e in final.events] == ["filed", "withdrawn"], final.events)
    return Final(workflow_id_of(filed.complaint_id), final.status.value)


async def withdrawn_by_report(desk: ComplaintDesk, env: WorkflowEnvironment, cid: str, cust: str) -> None:
    await env.sleep(timedelta(hours=2))
    await desk.report(cid, customer_actor(cust), ReportedAction.WITHDRAWN, note="the code came after all")


# ----------------------------------------------------------------------------------------- activations


async def sms_in_time(desk: ComplaintDesk, env: WorkflowEnvironment, activation: ActivationState) -> None:
    await env.sleep(timedelta(minutes=7))
    await desk.receive_sms(activation.activation_id, BACKEND, "Your WhatsApp code: 123-456")


async def no_sms(desk: ComplaintDesk, env: WorkflowEnvironment, activation: ActivationState) -> None:
    """Nothing: the timer ends the wait."""


async def canceled_twice_then_late_sms(
    desk: ComplaintDesk, env: WorkflowEnvironment, activation: ActivationState
) -> None:
    """The customer cancels twice at once (both updates reach the running workflow, as recorded); a late
    SMS is then refused (by the update validator or from the ledger: no event either way)."""
    await env.sleep(timedelta(minutes=5))
    owner = Actor(role=Role.CUSTOMER, id=activation.customer_id)
    aid = activation.activation_id
    first, again = await asyncio.gather(
        desk.cancel_activation(aid, owner), desk.cancel_activation(aid, owner)
    )
    expect(first.refund is not None and again.refund == first.refund, (first, again))
    try:
        await desk.receive_sms(aid, BACKEND, "Your WhatsApp code: 654-321")
    except PolicyRefusal as refusal:
        expect(refusal.code == refusals.INVALID_STATE, refusal)
    else:
        raise AssertionError("a late SMS completed a canceled activation")


# ------------------------------------------------------------------------------------------ recordings


class Final(NamedTuple):
    """A recorded scenario's workflow and the status it ended in."""

    workflow_id: str
    status: str


@dataclass(frozen=True)
class Stage:
    """The test server, the desk and the ledger every scenario of one run shares."""

    env: WorkflowEnvironment
    desk: TimeSkippingDesk
    ledger: Ledger

    async def order(self, made: Order) -> Order:
        """`made`, placed now by the server's clock (which runs days or years ahead of the wall clock once
        earlier scenarios have skipped time), so that the workflow's intake check sees it in time (R3)."""
        placed_at = await self.env.get_current_time()
        expect(placed_at.tzinfo is not None, placed_at)
        stored, _ = await self.ledger.record_order(made.model_copy(update={"placed_at": placed_at}))
        return stored

    async def complaint_outcome(self, complaint_id: str) -> Final:
        final = await self.desk.outcome(complaint_id)
        return Final(workflow_id_of(complaint_id), final.status.value)

    async def activation_outcome(self, order_id: str) -> Final:
        workflow_id = activation_workflow_id(order_id)
        handle = self.desk.client.get_workflow_handle(workflow_id, result_type=ActivationState)
        async with self.desk.time_skipping():
            final: ActivationState = await handle.result()
        return Final(workflow_id, final.status.value)


Recording = Callable[[Stage], Awaitable[Final]]


@dataclass(frozen=True)
class Recipe:
    record: Recording
    expected: str
    """The status the scenario must end in, or nothing is written."""


def defect(scenario: Scenario, expected: ComplaintStatus, policy: PolicySnapshot = POLICY) -> Recipe:
    async def record(stage: Stage) -> Final:
        order = await stage.order(software_order())
        state = await stage.desk.file_defect_complaint(order, DESCRIPTION, customer(order), policy)
        await scenario(stage.desk, stage.env, state.complaint_id, order.customer_id)
        return await stage.complaint_outcome(state.complaint_id)

    return Recipe(record, expected.value)


def claim(
    kind: ComplaintKind,
    scenario: Scenario,
    expected: ComplaintStatus,
    evidence: Sequence[EvidenceFile] = (),
) -> Recipe:
    async def record(stage: Stage) -> Final:
        order = await stage.order(number_order())
        state = await stage.desk.file(order, kind, CLAIM, customer(order), evidence=evidence)
        await scenario(stage.desk, stage.env, state.complaint_id, order.customer_id)
        return await stage.complaint_outcome(state.complaint_id)

    return Recipe(record, expected.value)


def activation(scenario: ActivationScenario, expected: str) -> Recipe:
    async def record(stage: Stage) -> Final:
        order = await stage.order(number_order())
        state, created = await stage.desk.start_activation(order.order_id, PHONE, SERVICE, BACKEND)
        expect(created, state)
        await scenario(stage.desk, stage.env, state)
        return await stage.activation_outcome(order.order_id)

    return Recipe(record, expected)


def tiny_png() -> bytes:
    """A real 1x1 PNG (one white grayscale pixel): the screenshot an invalid-number claim must carry."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff")  # one row: filter type 0, one byte
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


SCREENSHOT = EvidenceFile(name="2fa-screen.png", content_type="image/png", data=tiny_png())

S = ComplaintStatus
FAMILIES = ("defect_", "claim_", "activation_")

SCENARIOS: dict[str, Recipe] = {
    "defect_refunded_by_default_after_access": defect(refunded_by_default_after_access, S.REFUNDED),
    "defect_replaced_with_offer": defect(replaced_with_offer, S.REPLACED),
    "defect_rectified": defect(rectified, S.RECTIFIED),
    "defect_access_silence": defect(access_silence, S.ACCESS_REFUSED),
    "defect_escalated_then_rejected": defect(escalated_then_rejected, S.REJECTED),
    "defect_withdrawn_while_choosing": defect(withdrawn_while_choosing, S.WITHDRAWN),
    "defect_intake_checked_rectified": defect(rectified, S.RECTIFIED),
    "defect_replacement_chosen_twice": defect(replacement_chosen_twice, S.REPLACED),
    "defect_continued_as_new": defect(continued_as_new, S.REPLACED, BOUNDED),
    "defect_credentials_revealed": defect(credentials_revealed, S.RECTIFIED),
    "defect_woke_escalated_then_rejected": defect(escalated_then_rejected, S.REJECTED),
    "defect_woke_refunded_by_default_after_access": defect(refunded_by_default_after_access, S.REFUNDED),
    "defect_fixed_by_report": defect(fixed_by_report, S.RECTIFIED),
    "defect_report_refused": defect(report_refused, S.ACCESS_REFUSED),
    "claim_sms_refunded_on_approval": claim(ComplaintKind.SMS_NOT_RECEIVED, approved, S.REFUNDED),
    "claim_invalid_number_rejected": claim(
        ComplaintKind.INVALID_NUMBER, number_found_valid, S.REJECTED, evidence=[SCREENSHOT]
    ),
    "claim_escalated_then_approved": claim(
        ComplaintKind.SMS_NOT_RECEIVED, escalated_then_approved, S.REFUNDED
    ),
    "claim_withdrawn": claim(ComplaintKind.SMS_NOT_RECEIVED, withdrawn, S.WITHDRAWN),
    "claim_woke_escalated_then_approved": claim(
        ComplaintKind.SMS_NOT_RECEIVED, escalated_then_approved, S.REFUNDED
    ),
    "claim_withdrawn_before_filing": Recipe(withdrawn_before_filing, S.WITHDRAWN.value),
    "claim_withdrawn_by_report": claim(ComplaintKind.SMS_NOT_RECEIVED, withdrawn_by_report, S.WITHDRAWN),
    "activation_completed": activation(sms_in_time, "completed"),
    "activation_timed_out_refunded": activation(no_sms, "canceled"),
    "activation_canceled_by_customer": activation(canceled_twice_then_late_sms, "canceled"),
}
"""Every scenario by the stem of its history file; each stem starts with one of `FAMILIES`."""

PREVIOUS_RELEASE = frozenset(
    {
        "defect_refunded_by_default_after_access",
        "defect_replaced_with_offer",
        "defect_rectified",
        "defect_access_silence",
        "defect_escalated_then_rejected",
        "defect_withdrawn_while_choosing",
    }
)
"""Recorded before the intake check moved into the workflow: kept as they are, never recorded again."""


def customer_actor(customer_id: str) -> Actor:
    return Actor(role=Role.CUSTOMER, id=customer_id)


def expect(holds: bool, about: object) -> None:
    """A scenario that did not go as its name says must not leave a history behind."""
    if not holds:
        raise AssertionError(f"scenario went astray: {about!r}")


async def settled(
    desk: ComplaintDesk, complaint_id: str, done: Callable[[ComplaintState], bool]
) -> ComplaintState:
    """The complaint once `done` holds: the workflow may still be working through a timer that fired."""
    for _ in range(600):
        state = await desk.get(complaint_id)
        if done(state):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"{complaint_id} did not get there in 30 s: {state!r}")


def path_of(stem: str) -> Path:
    return HISTORIES / f"{stem}.json"


def select(prefixes: Sequence[str], replace: bool) -> tuple[list[str], list[str]]:
    """The stems to record, and a line for each selected one that is kept as it is."""
    chosen = [s for s in SCENARIOS if not prefixes or s.startswith(tuple(prefixes))]
    unmatched = [p for p in prefixes if not any(s.startswith(p) for s in SCENARIOS)]
    if unmatched:
        raise SystemExit(f"no scenario is named {', '.join(unmatched)}*; known: {', '.join(SCENARIOS)}")
    record: list[str] = []
    kept: list[str] = []
    for stem in chosen:
        name = path_of(stem).name
        if stem in PREVIOUS_RELEASE:
            state = "kept" if path_of(stem).exists() else "MISSING (restore it from git)"
            kept.append(f"{name}: {state}, recorded by the previous release")
        elif path_of(stem).exists() and not replace:
            kept.append(f"{name}: kept (record it again with --replace {stem})")
        else:
            record.append(stem)
    return record, kept


def clear_converter() -> DataConverter:
    """The project's converter without its payload codec: histories are recorded in clear. The tests'
    payload keys are generated afresh in every process, so a history encrypted with them could not be read
    again; the replay test's encrypting converter reads clear payloads as they are, as a worker reads those
    of a complaint started before encryption."""
    return dataclasses.replace(encrypting_converter(PAYLOAD_KEYS), payload_codec=None)


async def record(stems: Sequence[str]) -> None:
    HISTORIES.mkdir(exist_ok=True)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=clear_converter(),
        test_server_existing_path=tool_path("temporal-test-server"),
        runtime=QUIET_RUNTIME,
    )
    async with env:
        await register_search_attributes(env.client)
        with tempfile.TemporaryDirectory() as tmp:
            ledger = await migrated_ledger(f"sqlite+aiosqlite:///{tmp}/ledger.db")
            keyring = VaultKeyring.generate()
            queue = f"record-{uuid.uuid4().hex[:8]}"
            desk = TimeSkippingDesk(client=env.client, ledger=ledger, keyring=keyring, task_queue=queue)
            stage = Stage(env=env, desk=desk, ledger=ledger)
            try:
                async with build_worker(env.client, ledger, keyring, queue, inputs_sealed=False):
                    for stem in stems:
                        recipe = SCENARIOS[stem]
                        final = await recipe.record(stage)
                        expect(final.status == recipe.expected, (stem, final))
                        runs = await runs_of(env.client, final.workflow_id)
                        for n, history in enumerate(runs):
                            path = path_of(stem + CONTINUED * n)
                            path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                            print(f"{path.name}: {final.status}, {len(history.events)} events")
            finally:
                await ledger.close()


CONTINUED = ".continued"
"""What a history's file name gains for each run its workflow continued as: `<stem>.json` is the first run,
`<stem>.continued.json` the run it continued as."""


async def runs_of(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """The history of each run of the workflow's latest chain, first run first."""
    runs = [await client.get_workflow_handle(workflow_id).fetch_history()]
    while previous := continued_from(runs[0]):
        runs.insert(0, await client.get_workflow_handle(workflow_id, run_id=previous).fetch_history())
    return runs


def continued_from(history: WorkflowHistory) -> str:
    """The run this one continued as new from; empty for a workflow's first run."""
    return history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("prefixes", nargs="*", help="record only the scenarios whose file name starts so")
    parser.add_argument("--replace", action="store_true", help="record the named existing histories again")
    args = parser.parse_args(argv)
    if args.replace and not args.prefixes:
        parser.error("--replace needs prefixes naming the histories to record again")
    stems, kept = select(args.prefixes, args.replace)
    for line in kept:
        print(line)
    if stems:
        asyncio.run(record(stems))


if __name__ == "__main__":
    main()
