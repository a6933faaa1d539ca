"""What a chaos run must prove at the end, read from the ledger's tables and from Temporal.

Each check returns sentences, one per violation; an empty list means it holds. They read the rows
themselves (SQL over `ledger.schema`), not only the desk's answers, so a projection that disagrees with the
rows that carry the money is caught.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError
from temporalio.worker import Replayer, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import worker
from bench.driver import Scenario
from ledger.repository import Ledger
from ledger.schema import (
    ActivationRow,
    BalanceEntryRow,
    ComplaintEventRow,
    ComplaintRow,
    RefundRow,
    ReplacementRow,
    VaultSecretRow,
)

Totals = dict[str, Decimal]


@dataclass
class LedgerFigures:
    refunds: int = 0
    replacements: int = 0
    refunded: Totals = field(default_factory=dict)
    max_refunds_per_source: int = 0
    max_refunds_per_order: int = 0
    max_replacements_per_complaint: int = 0
    customers: int = 0
    events: int = 0


@dataclass
class _Rows:
    refunds: Sequence[Any]
    replacements: Sequence[Any]
    complaints: dict[str, Any]
    activations: dict[str, Any]
    entries: Sequence[Any]
    trail: dict[str, list[tuple[int, str]]]
    vaulted: set[str]


async def _read(ledger: Ledger) -> _Rows:
    async with ledger.engine.connect() as conn:
        refunds = (await conn.execute(select(RefundRow))).all()
        replacements = (await conn.execute(select(ReplacementRow))).all()
        complaints = {r.complaint_id: r for r in (await conn.execute(select(ComplaintRow))).all()}
        activations = {r.order_id: r for r in (await conn.execute(select(ActivationRow))).all()}
        entries = (await conn.execute(select(BalanceEntryRow))).all()
        events = (
            await conn.execute(
                select(ComplaintEventRow.complaint_id, ComplaintEventRow.seq, ComplaintEventRow.type)
            )
        ).all()
        vaulted = {r.complaint_id for r in (await conn.execute(select(VaultSecretRow.complaint_id))).all()}
    trail: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for complaint_id, seq, kind in events:
        trail[complaint_id].append((seq, kind))
    for steps in trail.values():
        steps.sort()
    return _Rows(refunds, replacements, complaints, activations, entries, trail, vaulted)


async def ledger_violations(ledger: Ledger, scenarios: Sequence[Scenario]) -> tuple[list[str], LedgerFigures]:
    """Money at most once and as each scenario expects, balances that add up, audit trails without gaps."""
    rows = await _read(ledger)
    violations: list[str] = []
    by_source = Counter((r.source_kind, r.source_id) for r in rows.refunds)
    by_order = Counter(r.order_id for r in rows.refunds)
    by_complaint = Counter(r.complaint_id for r in rows.replacements)
    figures = LedgerFigures(
        refunds=len(rows.refunds),
        replacements=len(rows.replacements),
        refunded=_sum((r.currency, r.amount) for r in rows.refunds),
        max_refunds_per_source=max(by_source.values(), default=0),
        max_refunds_per_order=max(by_order.values(), default=0),
        max_replacements_per_complaint=max(by_complaint.values(), default=0),
        events=sum(len(steps) for steps in rows.trail.values()),
    )
    for (kind, source), count in by_source.items():
        if count > 1:
            violations.append(f"{count} refunds for {kind} {source} (R16: at most one)")
    for order_id, count in by_order.items():
        if count > 1:
            violations.append(f"{count} refunds for order {order_id} (R16: at most one per order)")
    for complaint_id, count in by_complaint.items():
        if count > 1:
            violations.append(f"{count} replacements for complaint {complaint_id} (R16: at most one)")

    per_order_kind = Counter((r.order_id, r.kind) for r in rows.complaints.values())
    for s in scenarios:
        if not s.finished:
            continue  # counted as lost; its rows may be half-written
        where = f"#{s.index} {s.kind} ({s.order.order_id})"
        if s.expect.entity == "activation":
            violations += [f"{where}: {v}" for v in _activation(s, rows, by_source)]
        else:
            violations += [f"{where}: {v}" for v in _complaint(s, rows, by_source, by_complaint)]
            if per_order_kind[(s.order.order_id, _kind_of(s))] != 1:
                count = per_order_kind[(s.order.order_id, _kind_of(s))]
                violations.append(f"{where}: {count} complaints on the order (R15: one filing, one)")
        paid = by_order.get(s.order.order_id, 0)
        if paid != int(s.expect.refund):
            violations.append(f"{where}: the order was refunded {paid} times, not {int(s.expect.refund)}")

    balance_violations, figures.customers = await _balances(ledger, rows, scenarios)
    return violations + balance_violations, figures


def _kind_of(s: Scenario) -> str | None:
    return None if s.complaint_id is None else s.complaint_id.split(".")[1]


def _activation(s: Scenario, rows: _Rows, by_source: Counter[tuple[str, str]]) -> list[str]:
    row = rows.activations.get(s.order.order_id)
    if row is None:
        return ["no activation row in the ledger"]
    found: list[str] = []
    if row.status != s.expect.status:
        found.append(f"the ledger shows the activation {row.status}, expected {s.expect.status}")
    reason = json.loads(row.state_json).get("cancel_reason")
    if reason != s.expect.cancel_reason:
        found.append(f"the ledger shows the cancel reason {reason}, expected {s.expect.cancel_reason}")
    count = by_source.get(("activation", row.activation_id), 0)
    if count != int(s.expect.refund):
        found.append(f"{count} refunds for the activation, expected {int(s.expect.refund)}")
    return found


def _complaint(
    s: Scenario, rows: _Rows, by_source: Counter[tuple[str, str]], by_complaint: Counter[str]
) -> list[str]:
    cid = s.complaint_id
    if cid is None:
        return ["finished without a complaint id"]
    row = rows.complaints.get(cid)
    if row is None:
        return [f"complaint {cid} is not in the ledger"]
    found: list[str] = []
    if row.status != s.expect.status or row.outcome != row.status:
        found.append(f"the ledger shows {row.status} (outcome {row.outcome}), expected {s.expect.status}")
    if s.final_status is not None and row.status != s.final_status:
        found.append(f"the ledger shows {row.status}, Temporal's result {s.final_status}")
    refunds = by_source.get(("complaint", cid), 0)
    if refunds != int(s.expect.refund):
        found.append(f"{refunds} refunds for complaint {cid}, expected {int(s.expect.refund)}")
    replaced = by_complaint.get(cid, 0)
    if replaced != int(s.expect.replacement_sku is not None):
        found.append(f"{replaced} replacements for complaint {cid}")
    steps = rows.trail.get(cid, [])
    seqs = [seq for seq, _ in steps]
    if seqs != list(range(1, len(seqs) + 1)) or row.last_seq != len(seqs):
        found.append(f"audit trail of {cid} has gaps: seqs {seqs}, last_seq {row.last_seq} (R16)")
    outcomes = [kind for _, kind in steps if kind == row.status]
    if len(outcomes) != 1 or not steps or steps[-1][1] != row.status:
        kinds = [kind for _, kind in steps]
        found.append(f"audit trail of {cid} does not end with one {row.status} event: {kinds}")
    kinds = [kind for _, kind in steps]
    if s.expect.credentials_filed and kinds.count("access_granted") != 1:
        granted = kinds.count("access_granted")
        found.append(f"access was granted on {cid} but its trail says so {granted} times")
    if "report_refused" in kinds:
        found.append(f"audit trail of {cid} has a refused report, though every step was in time: {kinds}")
    if cid in rows.vaulted:
        found.append(f"{cid} ended and the vault still holds its credentials (R9 lends them to the fix only)")
    return found


async def _balances(ledger: Ledger, rows: _Rows, scenarios: Sequence[Scenario]) -> tuple[list[str], int]:
    """Every customer's balance (as the desk reports it) is the sum of their refund rows, and that is the
    sum of the prices of the scenarios that expect a refund for them."""
    refunded: dict[str, Totals] = defaultdict(dict)
    for r in rows.refunds:
        _add(refunded[r.customer_id], r.currency, r.amount)
    credited: dict[str, Totals] = defaultdict(dict)
    for e in rows.entries:
        _add(credited[e.customer_id], e.currency, e.amount)
    expected: dict[str, Totals] = defaultdict(dict)
    for s in scenarios:
        if s.finished and s.expect.refund:
            _add(expected[s.order.customer_id], s.order.price.currency, s.order.price.amount)
    customers = (
        set(refunded) | set(credited) | set(expected) | {s.order.customer_id for s in scenarios if s.finished}
    )
    found: list[str] = []
    for customer in sorted(customers):
        balance = (await ledger.balance(customer)).totals
        mine = refunded.get(customer, {})
        if balance != mine or credited.get(customer, {}) != mine:
            found.append(
                f"customer {customer}: balance {balance}, balance entries {credited.get(customer)}, "
                f"refund rows {mine}"
            )
        if mine != expected.get(customer, {}):
            found.append(f"customer {customer}: refunded {mine}, scenarios expect {expected.get(customer)}")
    return found, len(customers)


async def temporal_violations(
    client: Client, expected_workflows: int, histories: Path, settle_seconds: float = 20
) -> list[str]:
    """No workflow still running (visibility lags its executions a little, so give it a moment), and no
    more workflows than the scenarios started: a duplicate request must not have made another. A workflow
    left running has its history saved under `histories` and its last task failure quoted, since that is
    where a stuck workflow says why."""
    running = -1
    for _ in range(int(settle_seconds * 2)):
        running = (await client.count_workflows('ExecutionStatus="Running"')).count
        if running == 0:
            break
        await asyncio.sleep(0.5)
    found: list[str] = []
    if running:
        async for listed in client.list_workflows('ExecutionStatus="Running"', limit=20):
            history = await client.get_workflow_handle(listed.id, run_id=listed.run_id).fetch_history()
            await asyncio.to_thread(_save, histories / f"{listed.id}.json", history.to_json())
            failures = [
                e.workflow_task_failed_event_attributes.failure.message
                for e in history.events
                if e.HasField("workflow_task_failed_event_attributes")
            ]
            why = f"its last task failed: {failures[-1]}" if failures else "no task failure in its history"
            found.append(f"{listed.id} still running at the end (lost); {why}")
        found.insert(0, f"{running} workflows still running at the end; histories in {histories}")
    total = (await client.count_workflows(f"ExecutionStatus != {CONTINUED_AS_NEW}")).count
    if total != expected_workflows:
        found.append(f"Temporal holds {total} workflows, the scenarios started {expected_workflows}")
    return found


CONTINUED_AS_NEW = '"ContinuedAsNew"'
"""The status of a run that continued as new: one more run of a workflow, not another workflow."""


async def runs_continued(client: Client, expected_at_least: int) -> tuple[int, list[str]]:
    """How many runs continued as new, and a violation if fewer than the scenarios that must have."""
    continued = (await client.count_workflows(f"ExecutionStatus = {CONTINUED_AS_NEW}")).count
    if continued < expected_at_least:
        return continued, [f"{continued} runs continued as new; the scenarios needed {expected_at_least}"]
    return continued, []


@dataclass(frozen=True)
class Execution:
    """One run of a workflow to replay: its ids, Temporal's status for it, and how to read its history."""

    workflow_id: str
    run_id: str
    status: str
    """"completed", "continued_as_new", "running", "failed", "terminated", ... (lower case)."""
    history: Callable[[], Awaitable[WorkflowHistory]]


@dataclass
class ReplayFigures:
    replayed: int = 0
    """Histories replayed to their end, whether they replayed cleanly or not."""
    unreplayable: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    """The replayed histories by their run's status."""
    seconds: float = 0.0


UNREPLAYABLE = "unreplayable_history"
"""How a violation of the replay check starts: a history today's worker could not replay."""


def deployed_workflow_runner() -> WorkflowRunner:
    """The workflow runner the deployed worker uses: `worker.workflow_runner()` where worker.py defines one
    (its sandbox's settings), else the SDK's default sandbox, which is what `Worker` runs without one."""
    defined = getattr(worker, "workflow_runner", None)
    if defined is None:
        return SandboxedWorkflowRunner()
    runner = defined()
    if not isinstance(runner, WorkflowRunner):
        raise TypeError(f"worker.workflow_runner() returned {runner!r}, not a WorkflowRunner")
    return runner


async def replay_all(
    executions: Sequence[Execution],
    *,
    data_converter: DataConverter,
    workflows: Sequence[type] = worker.WORKFLOWS,
    workflow_runner: WorkflowRunner | None = None,
    lanes: int = 4,
    histories: Path | None = None,
) -> tuple[ReplayFigures, list[str]]:
    """Replay every execution's history with `workflows` as a new worker would; one violation per history
    that does not replay (`unreplayable_history: workflow <id> run <run id> (<status>): <first line>`, its
    history saved under `histories`), and one per history that could not be read.

    `lanes` replayers run side by side, each reading its next history while the others replay, so at most
    `lanes` histories are read or replayed at once."""
    began = time.monotonic()
    runner = workflow_runner or deployed_workflow_runner()
    waiting: asyncio.Queue[Execution] = asyncio.Queue()
    for execution in executions:
        waiting.put_nowait(execution)
    figures = ReplayFigures()
    statuses: Counter[str] = Counter()
    found: list[str] = []

    async def lane() -> None:
        replayer = Replayer(workflows=list(workflows), data_converter=data_converter, workflow_runner=runner)
        # The execution whose history the replayer holds: it asks for the next only once it has answered.
        current: list[Execution] = []

        async def read() -> AsyncIterator[WorkflowHistory]:
            while not waiting.empty():
                execution = waiting.get_nowait()
                try:
                    history = await _read_history(execution)
                except Exception as err:
                    found.append(
                        f"the history of workflow {execution.workflow_id} run {execution.run_id} could "
                        f"not be read, so it was not replayed: {_first_line(err)}"
                    )
                    continue
                current[:] = [execution]
                yield history

        async with replayer.workflow_replay_iterator(read()) as results:
            async for result in results:
                [execution] = current
                figures.replayed += 1
                statuses[execution.status] += 1
                if result.replay_failure is None:
                    continue
                figures.unreplayable += 1
                found.append(
                    f"{UNREPLAYABLE}: workflow {execution.workflow_id} run {execution.run_id} "
                    f"({execution.status}): {_first_line(result.replay_failure)}"
                )
                if histories is not None:
                    name = f"{execution.workflow_id}.{execution.run_id}.json"
                    await asyncio.to_thread(_save, histories / name, result.history.to_json())

    await asyncio.gather(*(lane() for _ in range(max(1, lanes))))
    figures.by_status = dict(statuses.most_common())
    figures.seconds = round(time.monotonic() - began, 1)
    return figures, found


async def _read_history(execution: Execution, attempts: int = 5) -> WorkflowHistory:
    """The history, read again after a transient error (the server was restarted during the run)."""
    for attempt in range(attempts):
        try:
            return await execution.history()
        except (RPCError, OSError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


async def replay_violations(
    client: Client,
    task_queue: str,
    workflow_ids: Iterable[str],
    *,
    data_converter: DataConverter,
    workflow_runner: WorkflowRunner | None = None,
    lanes: int = 4,
    histories: Path | None = None,
) -> tuple[ReplayFigures, list[str]]:
    """Every run of every workflow on `task_queue`, whatever its status (completed, failed, terminated,
    still running, continued as new), replayed by `replay_all`; and a violation for any of `workflow_ids`
    (the scenarios') that Temporal did not list, since a history never replayed proves nothing."""
    executions: list[Execution] = []
    async for listed in client.list_workflows(f'TaskQueue = "{task_queue}"'):
        handle = client.get_workflow_handle(listed.id, run_id=listed.run_id)
        status = listed.status.name.lower() if listed.status is not None else "unknown"
        executions.append(Execution(listed.id, listed.run_id, status, handle.fetch_history))
    figures, found = await replay_all(
        executions,
        data_converter=data_converter,
        workflow_runner=workflow_runner,
        lanes=lanes,
        histories=histories,
    )
    missing = sorted(set(workflow_ids) - {e.workflow_id for e in executions})
    if missing:
        found.append(f"{len(missing)} scenarios' workflows were not listed, so not replayed: {missing[:5]}")
    return figures, found


def _save(path: Path, text: str) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)


def _add(totals: Totals, currency: str, amount: Decimal) -> None:
    totals[currency] = totals.get(currency, Decimal(0)) + amount


def _sum(items: Iterable[tuple[str, Decimal]]) -> Totals:
    totals: Totals = {}
    for currency, amount in items:
        _add(totals, currency, amount)
    return totals
