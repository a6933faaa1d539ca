"""Benchmark 1, lifecycle cost: N defect complaints driven through review, access request and grant, the
deadline and the default refund, against N bare workflows with the same activities, updates and timers.

    .venv/bin/python -m bench.lifecycle [--lifecycles 1000] [--concurrency 20] [--workflow-cache 0]

Both run on one dev server, each with its own worker process (`python worker.py` and `python -m
bench.baseline`), the bare ones first. A driver slot files (starts), then sends the three updates, and moves
on; the timers finish each lifecycle on their own. Throughput is counted from the server's close times, from
the first lifecycle to close to the last, which is the rate the system sustains once the pipeline is full
(the deadline's fixed wait, the same for both, is not in it). Every complaint must end refunded after the
same events as the first one, with one refund in the ledger; the run fails otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from temporalio.client import Client, WorkflowHandle

from bench.baseline import BareLifecycle, BarePlan
from bench.report import Row, latency_ms, memory, report, rss_mib
from bench.stage import Stage, new_queue, stage
from bench.workload import (
    APPROVE,
    BACKEND,
    CREDENTIALS,
    DESCRIPTION,
    SUPPORT,
    activities_in,
    bounded,
    customer,
    order,
    plan_of,
    timed,
)
from ledger.schema import RefundRow
from policy.ids import complaint_workflow_id, workflow_id_of
from policy.models import ComplaintKind, ComplaintStatus
from policy.refusals import PolicyRefusal
from policy.settings import PolicySnapshot
from starter.desk import ComplaintDesk

GOAL_RATIO = 0.33


@dataclass
class Options:
    lifecycles: int = 1000
    concurrency: int = 20
    deadline: float = 120.0
    choice_window: float = 2.0
    workflow_cache: int = 0
    max_concurrent_workflow_tasks: int | None = None
    timeout: float = 1200.0


@dataclass
class Side:
    """One side's figures: the project's complaints or the bare workflows."""

    started: int = 0
    closed: int = 0
    first_start: float = 0.0
    first_close: float = 0.0
    last_close: float = 0.0
    drive_seconds: float = 0.0
    worker_rss: dict[str, float] = field(default_factory=dict)

    def steady(self) -> float:
        """Lifecycles per second from the first close to the last."""
        span = self.last_close - self.first_close
        return (self.closed - 1) / span if span > 0 else float("nan")

    def overall(self) -> float:
        """Lifecycles per second from the first start to the last close (timers' fixed wait included)."""
        span = self.last_close - self.first_start
        return self.closed / span if span > 0 else float("nan")


def policy(options: Options) -> PolicySnapshot:
    """Short windows with the reminder due at once (so the deadline is the only timer before the remedy
    window), and a long window for the access answer, which the driver gives at once."""
    return PolicySnapshot(
        rectify_window=timedelta(seconds=options.deadline),
        remedy_choice_window=timedelta(seconds=options.choice_window),
        review_reminder_before=timedelta(seconds=options.deadline),
        access_response_window=timedelta(hours=1),
    )


async def drive_complaint(
    desk: ComplaintDesk, run: str, index: int, terms: PolicySnapshot, updates: list[float]
) -> str:
    """File, approve, request access, grant it: the rest (deadline, remedy window, refund) is timers'."""
    o = order(run, index)
    await desk.record_order(o)
    filed = await desk.file(o, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, BACKEND, policy=terms)
    cid = filed.complaint_id
    try:
        await timed(desk.review(cid, APPROVE), updates)
        await timed(desk.request_access(cid, SUPPORT, "ssh", "to reproduce the crash"), updates)
        await timed(desk.grant_access(cid, customer(o), CREDENTIALS), updates)
    except PolicyRefusal as refusal:  # the deadline beat the driver: `check` counts it off the plan
        print(f"{cid}: {refusal}", flush=True)
    return cid


async def template(desk: ComplaintDesk, client: Client, terms: PolicySnapshot) -> tuple[BarePlan, list[str]]:
    """One complaint driven slowly (each step on a quiet worker): the plan the baseline copies, and the
    event types every complaint of the run must show."""
    cid = await drive_complaint(desk, "tmpl", 0, terms, [])
    handle = client.get_workflow_handle(workflow_id_of(cid))
    await handle.result()
    final = await desk.get(cid)
    if final.status is not ComplaintStatus.REFUNDED:
        raise SystemExit(f"the template complaint ended {final.status.value}, not refunded")
    plan = plan_of(await handle.fetch_history())
    return plan, [e.type for e in final.events]


async def closes(
    client: Client, queue: str, expected: int, deadline: float, prefix: str
) -> tuple[list[datetime], list[datetime]]:
    """Wait until no workflow on `queue` runs, then the start and close times, from visibility, of those
    whose id starts with `prefix` (the run's own: not the template complaint, filed on the same queue)."""
    query = f'TaskQueue="{queue}"'
    while True:
        running = await client.count_workflows(f'{query} AND ExecutionStatus="Running"')
        total = await client.count_workflows(query)
        if running.count == 0 and total.count >= expected:
            break
        if time.monotonic() > deadline:
            raise SystemExit(
                f"timed out: {running.count} of {total.count} workflows on {queue} still running"
            )
        await asyncio.sleep(0.5)
    starts, ends = [], []
    async for w in client.list_workflows(query):
        if not w.id.startswith(prefix):
            continue
        starts.append(w.start_time)
        if w.close_time is not None:
            ends.append(w.close_time)
    return starts, ends


def fill(side: Side, starts: list[datetime], ends: list[datetime]) -> None:
    side.started, side.closed = len(starts), len(ends)
    origin = min(starts)
    side.first_start = 0.0
    side.first_close = (min(ends) - origin).total_seconds()
    side.last_close = (max(ends) - origin).total_seconds()


async def run_bare(
    st: Stage, options: Options, plan: BarePlan, updates: list[float], deadline: float
) -> Side:
    queue = new_queue("bare")
    worker = st.start_worker(queue, baseline=True, **worker_settings(options))
    client = await Client.connect(st.server.address)  # bare: the default converter, no codec

    async def one(index: int) -> None:
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            BareLifecycle.run, plan, id=f"bare-{queue}-{index}", task_queue=queue
        )
        for activities in plan.per_update:
            await timed(handle.execute_update(BareLifecycle.step, activities), updates)

    side = Side()
    began = time.monotonic()
    await bounded(options.concurrency, [lambda i=i: one(i) for i in range(options.lifecycles)])  # type: ignore[misc]
    side.drive_seconds = time.monotonic() - began
    fill(side, *await closes(st.client, queue, options.lifecycles, deadline, prefix=f"bare-{queue}-"))
    side.worker_rss = rss_mib(worker.pid)
    return side


async def run_project(
    st: Stage,
    options: Options,
    desk: ComplaintDesk,
    terms: PolicySnapshot,
    updates: list[float],
    deadline: float,
) -> tuple[Side, list[str]]:
    run = desk.task_queue
    side = Side()
    began = time.monotonic()
    ids = await bounded(
        options.concurrency,
        [lambda i=i: drive_complaint(desk, run, i, terms, updates) for i in range(options.lifecycles)],  # type: ignore[misc]
    )
    side.drive_seconds = time.monotonic() - began
    prefix = complaint_workflow_id(order(run, 0).order_id, ComplaintKind.MAJOR_DEFECT).split(run)[0] + run
    fill(side, *await closes(st.client, run, options.lifecycles + 1, deadline, prefix=prefix))
    return side, ids


def worker_settings(options: Options) -> dict[str, Any]:
    settings: dict[str, Any] = {"workflow_cache": options.workflow_cache}
    if options.max_concurrent_workflow_tasks:
        settings["max_concurrent_workflow_tasks"] = options.max_concurrent_workflow_tasks
    return settings


async def check(desk: ComplaintDesk, ids: list[str], trail: list[str]) -> list[str]:
    """Each complaint refunded after the template's events (the reminder may come before or after the
    review: both are due at once), with exactly one refund row."""
    problems = []
    for cid in ids:
        state = await desk.get(cid)
        if state.status is not ComplaintStatus.REFUNDED or sorted(e.type for e in state.events) != sorted(
            trail
        ):
            problems.append(f"{cid}: {state.status.value} after {[e.type for e in state.events]}")
    async with desk.ledger.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(RefundRow.source_id, func.count())
                .where(RefundRow.source_id.in_(ids))
                .group_by(RefundRow.source_id)
            )
        ).all()
    refunds = {source: count for source, count in rows}
    problems += [f"{cid}: {refunds.get(cid, 0)} refunds" for cid in ids if refunds.get(cid, 0) != 1]
    return problems


async def bench(options: Options) -> int:
    deadline = time.monotonic() + options.timeout
    terms = policy(options)
    async with stage("lifecycle") as st:
        queue = new_queue("project")
        project_worker = st.start_worker(queue, **worker_settings(options))
        desk = st.desk(queue)
        # The template runs on a 5 s deadline, not to wait the run's whole window before it starts; the
        # bare workflows then wait the run's window, as the complaints do.
        plan, trail = await template(desk, st.client, policy(replace(options, deadline=5.0)))
        plan.timers[0].seconds = options.deadline
        print(f"plan from the template complaint: {plan}", flush=True)

        bare_updates: list[float] = []
        bare = await run_bare(st, options, plan, bare_updates, deadline)
        print(f"bare: {bare.closed} closed, {bare.steady():.1f}/s", flush=True)

        project_updates: list[float] = []
        project, ids = await run_project(st, options, desk, terms, project_updates, deadline)
        print(f"project: {project.closed} closed, {project.steady():.1f}/s", flush=True)
        project.worker_rss = rss_mib(project_worker.pid)
        server_rss = rss_mib(st.server.pid)
        problems = await check(desk, ids, trail)

    ratio = project.steady() / bare.steady()
    p, b = latency_ms(project_updates), latency_ms(bare_updates)
    rows = [
        Row("lifecycles (each side)", f"{options.lifecycles}"),
        Row(
            "plan: activities / updates / timers",
            f"{activities_in(plan)} / {len(plan.per_update)} / {len(plan.timers)}",
        ),
        Row("project lifecycles/s (first to last close)", f"{project.steady():.1f}"),
        Row("bare lifecycles/s (first to last close)", f"{bare.steady():.1f}"),
        Row("ratio project / bare", f"{ratio:.2f}", f">= {GOAL_RATIO}"),
        Row("project lifecycles/s (first start to last close)", f"{project.overall():.1f}"),
        Row("bare lifecycles/s (first start to last close)", f"{bare.overall():.1f}"),
        Row("project update round trip p50 / p99", f"{p['p50_ms']} / {p['p99_ms']} ms"),
        Row("bare update round trip p50 / p99", f"{b['p50_ms']} / {b['p99_ms']} ms"),
        Row(
            "project worker RSS now / peak",
            memory(project.worker_rss),
        ),
        Row(
            "bare worker RSS now / peak",
            memory(bare.worker_rss),
        ),
        Row("dev server RSS now / peak", memory(server_rss)),
        Row("workers' sticky cache (max cached workflows)", f"{options.workflow_cache}"),
        Row("complaints not refunded exactly once as planned", f"{len(problems)}", "0"),
    ]
    report(
        "lifecycle",
        f"Lifecycle cost: {options.lifecycles} defect complaints vs {options.lifecycles} bare workflows",
        rows,
        {
            "options": asdict(options),
            "plan": asdict(plan),
            "trail": trail,
            "project": {
                **asdict(project),
                "steady_per_s": project.steady(),
                "overall_per_s": project.overall(),
            },
            "bare": {**asdict(bare), "steady_per_s": bare.steady(), "overall_per_s": bare.overall()},
            "ratio": ratio,
            "project_update_latency": p,
            "bare_update_latency": b,
            "dev_server_rss": server_rss,
            "problems": problems[:50],
        },
    )
    return 1 if problems else 0


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__.split("\n\n")[0])
    d = Options()
    p.add_argument("--lifecycles", type=int, default=d.lifecycles)
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="lifecycles being driven at once")
    p.add_argument("--deadline", type=float, default=d.deadline, help="rectification window, seconds")
    p.add_argument("--choice-window", type=float, default=d.choice_window, help="remedy window, seconds")
    p.add_argument("--workflow-cache", type=int, default=d.workflow_cache, help="both workers' sticky cache")
    p.add_argument("--max-concurrent-workflow-tasks", type=int, default=None)
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds for the whole run")
    return Options(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
