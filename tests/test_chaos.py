"""The chaos run (`bench/chaos.py`): its small version end to end, its checks on a ledger that is wrong on
purpose and on histories that do not replay, and the workflow bug the full run found, reproduced without
any chaos.

The small version is the real thing at a smaller size: a dev server on a SQLite file, `python worker.py`
SIGKILLed at random and restarted, the dev server SIGKILLed once in the middle and restarted on the same
file and port, fifty scenarios over every path of the policy driven by a retrying client, state queries
sent at random meanwhile, and every history of the run replayed at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from temporalio import workflow
from temporalio.client import WorkflowHistory, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.checks import UNREPLAYABLE, Execution, ledger_violations, replay_all
from bench.driver import Scenario
from bench.scenarios import PATH_BY_NAME, PATHS
from ledger.records import RefundIssue
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.activation import ActivationState, CancelReason, StartActivation
from policy.complaint import FileClaim, Withdraw
from policy.ids import activation_id_of, activation_workflow_id, complaint_workflow_id, new_complaint_id
from policy.models import ActivationStatus, ComplaintKind, ComplaintStatus, Order, RefundRecord
from starter.desk.codec import encrypting_converter
from tests.factories import BACKEND, CLAIM, PAYLOAD_KEYS, POLICY, customer, number_order
from tests.record_histories import HISTORIES
from tests.test_replay import load
from worker import WORKFLOWS, build_worker
from workflows.defect_complaint import DefectComplaintWorkflow
from workflows.refund_claim import RefundClaimWorkflow

ROOT = Path(__file__).resolve().parent.parent
SMALL = [
    *("--complaints", "50", "--seed", "7", "--kill-every", "6..10", "--min-kills", "2", "--timeout", "420"),
    *("--queries-per-second", "5"),
]
"""Fifty scenarios (every path two or three times), a worker kill every 6-10 s and at least two of them,
the one server restart, and five state queries a second at random; the kills are spaced so that the
activities a kill strands (30 s until their start-to-close timeout lets another worker retry them) still
fit the budget. A quiet machine ends it in 40-60 s; the 420 s budget is for a busy one (a CI run beside
other chaos runs took 60 s to finish its first scenario), since the run ends when its scenarios do."""


async def test_r16_a_small_chaos_run_loses_no_complaint_and_moves_money_at_most_once(tmp_path: Path) -> None:
    """R16 "whatever retries, restarts or duplicate requests happen", as one command runs it: every
    scenario ends as its path expects, nothing is lost, the money adds up to the scenarios exactly, and
    every history the run wrote, queried at random while workers died, replays."""
    workdir = tmp_path / "chaos"
    command = [sys.executable, "-m", "bench.chaos", *SMALL, "--workdir", str(workdir)]
    run = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    summary = json.loads((workdir / "chaos.json").read_text())

    assert summary["violations"] == [], run.stdout[-4000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert summary["started"] == summary["finished"] == summary["scenarios"] == 50
    assert summary["lost"] == 0 and not summary["timed_out"]
    assert summary["worker_kills"] >= 2 and summary["server_restarts"] == 1
    assert summary["worker_exits_by_itself"] == []
    assert set(summary["by_kind"]) == {path.name for path in PATHS}
    for name, figures in summary["by_kind"].items():
        assert figures["count"] >= 2 and figures["as_expected"] == figures["count"], (name, figures)
    refunds_expected = sum(
        f["count"] for name, f in summary["by_kind"].items() if PATH_BY_NAME[name].expect.refund
    )
    replaced_expected = sum(
        f["count"] for name, f in summary["by_kind"].items() if PATH_BY_NAME[name].expect.replacement_sku
    )
    assert summary["refunds"] == refunds_expected
    assert summary["replacements"] == replaced_expected
    assert summary["max_refunds_per_complaint_or_activation"] == 1
    assert summary["max_refunds_per_order"] == 1
    assert summary["max_replacements_per_complaint"] == 1
    # Every run of every workflow replayed: one per scenario, one more per run continued as new.
    assert summary["unreplayable"] == 0
    assert summary["histories_replayed"] == summary["started"] + summary["runs_continued_as_new"]
    assert summary["histories_by_status"]["completed"] >= 1, summary["histories_by_status"]
    assert summary["queries"]["answered"] > 0, summary["queries"]
    assert summary["reports"]["sent"] > 0, summary["reports"]  # fixes, answers, withdrawals as signals
    assert "steps sent as signals" in run.stdout
    assert "worker kills" in run.stdout and "violations       0" in run.stdout
    assert f"histories        {summary['histories_replayed']} replayed" in run.stdout
    assert ", 0 unreplayable" in run.stdout and "random queries   " in run.stdout


def finished(index: int, path: str, order: Order) -> Scenario:
    """A scenario as the driver leaves it once its workflow has ended the way its path expects."""
    return Scenario(
        index=index,
        kind=path,
        rules=PATH_BY_NAME[path].rules,
        expect=PATH_BY_NAME[path].expect,
        order=order,
        rng=random.Random(index),
        activation_id=activation_id_of(order.order_id),
        started=True,
        finished=True,
        final_status=PATH_BY_NAME[path].expect.status,
    )


async def ended_activation(ledger: Ledger, order: Order, status: ActivationStatus, refund: bool) -> None:
    """The rows a finished activation leaves: its projection and, if it paid, its refund."""
    now = datetime.now(UTC)
    state = ActivationState(
        activation_id=activation_id_of(order.order_id),
        order=order,
        phone_number="+447700900123",
        service="whatsapp",
        started_by=str(BACKEND),
        started_at=now,
        expires_at=now,
        status=status,
        sms_text="code 1" if status is ActivationStatus.COMPLETED else None,
        cancel_reason=None if status is ActivationStatus.COMPLETED else CancelReason.NO_SMS_IN_TIME,
        refund=RefundRecord(amount=order.price, issued_at=now)
        if status is ActivationStatus.CANCELED
        else None,
        version=3,
    )
    await ledger.record_activation(activation_workflow_id(order.order_id), "run-1", state)
    if refund:
        issue = RefundIssue(
            source_kind="activation",
            source_id=state.activation_id,
            customer_id=order.customer_id,
            order_id=order.order_id,
            amount=order.price,
            actor="system:refund-desk",
            at=now,
        )
        await ledger.issue_refund(issue)


async def test_r16_the_chaos_checks_pass_a_ledger_where_each_scenario_paid_what_it_expects(
    ledger: Ledger,
) -> None:
    timed_out, _ = await ledger.record_order(number_order(price="0.90"))
    answered, _ = await ledger.record_order(number_order(price="0.60", customer_id=timed_out.customer_id))
    await ended_activation(ledger, timed_out, ActivationStatus.CANCELED, refund=True)
    await ended_activation(ledger, answered, ActivationStatus.COMPLETED, refund=False)
    scenarios = [
        finished(0, "activation_no_sms", timed_out),
        finished(1, "activation_sms_received", answered),
    ]

    violations, figures = await ledger_violations(ledger, scenarios)

    assert violations == []
    assert (figures.refunds, figures.customers, figures.max_refunds_per_order) == (1, 1, 1)
    assert figures.refunded == {"EUR": Decimal("0.90")}


async def test_r16_the_chaos_checks_catch_a_refund_for_a_number_whose_sms_came(ledger: Ledger) -> None:
    """R1 says a completed activation is not refundable: a refund row for one is a violation three ways
    (the activation's refunds, the order's, and the customer's balance against the scenarios)."""
    answered, _ = await ledger.record_order(number_order(price="0.60"))
    await ended_activation(ledger, answered, ActivationStatus.COMPLETED, refund=True)

    violations, _ = await ledger_violations(ledger, [finished(4, "activation_sms_received", answered)])

    where = f"#4 activation_sms_received ({answered.order_id})"
    assert f"{where}: 1 refunds for the activation, expected 0" in violations
    assert f"{where}: the order was refunded 1 times, not 0" in violations
    assert any(v.startswith(f"customer {answered.customer_id}: refunded") for v in violations), violations
    assert len(violations) == 3, violations


async def test_r16_a_claim_acted_on_before_its_intake_check_finishes_still_starts_its_trail_with_filed(
    env: WorkflowEnvironment, ledger: Ledger
) -> None:
    """What the chaos run saw when a worker died during an SMS claim's first activity, made deterministic:
    a worker with the workflows but no activities accepts the customer's withdrawal while the claim's R5
    check (an activity) waits; then a whole worker runs the activities. The desk's filing answers only once
    the claim is filed, so this starts the workflow as any other Temporal client could."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    keyring = VaultKeyring.generate("test")
    order, _ = await ledger.record_order(number_order())
    kind = ComplaintKind.SMS_NOT_RECEIVED
    filing = FileClaim(
        kind=kind,
        complaint_id=new_complaint_id(order.order_id, kind),
        order=order,
        description=CLAIM,
        filed_by=customer(order),
        policy=POLICY,
    )
    # Nothing cached, so no task waits on this worker's sticky queue once it is gone.
    async with Worker(env.client, task_queue=queue, workflows=list(WORKFLOWS), max_cached_workflows=0):
        handle = await env.client.start_workflow(
            RefundClaimWorkflow.run, filing, id=complaint_workflow_id(order.order_id, kind), task_queue=queue
        )
        await handle.start_update(  # accepted (not refused), then waits for an activity worker
            RefundClaimWorkflow.withdraw,
            Withdraw(actor=customer(order)),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )

    async with build_worker(env.client, ledger, keyring, queue):
        final = await asyncio.wait_for(handle.result(), timeout=30)
    trail = [event.type for event in await ledger.complaint_events(filing.complaint_id)]

    assert final.status is ComplaintStatus.WITHDRAWN
    assert trail == ["filed", "withdrawn"], trail


# ------------------------------------------------------------------ the replay check is not vacuous
# Today's activation as a careless change might make it, under the real type's name. Unsandboxed: the
# sandbox would re-import this module (pytest) and refuse; what is checked is the command sequence.


@workflow.defn(name="NumberActivationWorkflow", sandboxed=False)
class ActivationThatWaitsFirst:
    @workflow.run
    async def run(self, start: StartActivation) -> ActivationState:
        await workflow.sleep(timedelta(seconds=1))
        raise AssertionError("replay must have failed before this point")


def recorded(stem: str, run_id: str, status: str = "completed") -> Execution:
    """A recorded history (tests/histories) as the replay check meets a listed run."""
    history = load(HISTORIES / f"{stem}.json")

    async def read() -> WorkflowHistory:
        return history

    return Execution(history.workflow_id, run_id, status, read)


def saved(histories: Path) -> list[str]:
    """The histories the check saved as unreplayable."""
    return sorted(path.name for path in histories.iterdir())


RECORDED = [
    recorded("activation_completed", "run-a"),
    recorded("claim_escalated_then_approved", "run-c"),
    recorded("defect_continued_as_new", "run-d1", "continued_as_new"),
    recorded("defect_continued_as_new.continued", "run-d2"),
]


async def test_the_replay_check_passes_histories_that_replay_with_the_workers_workflows(
    tmp_path: Path,
) -> None:
    figures, violations = await replay_all(
        RECORDED, data_converter=encrypting_converter(PAYLOAD_KEYS), lanes=2, histories=tmp_path
    )

    assert violations == []
    assert (figures.replayed, figures.unreplayable) == (4, 0)
    assert figures.by_status == {"completed": 3, "continued_as_new": 1}
    assert saved(tmp_path) == []


async def test_the_replay_check_counts_a_history_that_does_not_replay_as_a_violation(tmp_path: Path) -> None:
    """The same histories against a worker whose activation changed: the activation's history is the run's
    violation, named by workflow and run, with the nondeterminism's first line; the others still replay."""
    changed = [ActivationThatWaitsFirst, DefectComplaintWorkflow, RefundClaimWorkflow]

    figures, violations = await replay_all(
        RECORDED,
        workflows=changed,
        data_converter=encrypting_converter(PAYLOAD_KEYS),
        lanes=2,
        histories=tmp_path,
    )

    activation = RECORDED[0]
    [violation] = violations
    assert violation.startswith(
        f"{UNREPLAYABLE}: workflow {activation.workflow_id} run run-a (completed): NondeterminismError: "
    ), violation
    assert "\n" not in violation
    assert (figures.replayed, figures.unreplayable) == (4, 1)
    assert saved(tmp_path) == [f"{activation.workflow_id}.run-a.json"]


async def test_the_replay_check_counts_a_history_it_could_not_read_as_a_violation() -> None:
    async def unreadable() -> WorkflowHistory:
        raise OSError("connection reset")

    lost = Execution("complaint-x", "run-x", "running", unreadable)

    figures, violations = await replay_all(
        [lost, RECORDED[0]], data_converter=encrypting_converter(PAYLOAD_KEYS), lanes=1
    )

    assert violations == [
        "the history of workflow complaint-x run run-x could not be read, so it was not replayed: "
        "OSError: connection reset"
    ]
    assert (figures.replayed, figures.unreplayable) == (1, 0)
