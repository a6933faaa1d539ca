"""Benchmark 1, lifecycle cost: N defect complaints driven through review, access request and grant, the
deadline and the default refund, against N bare workflows with the same activities, updates and timers.

    .venv/bin/python -m bench.lifecycle [--lifecycles 1000] [--concurrency 20] [--workflow-cache N]
                                        [--bare-workflow-cache N]

Both run on one dev server, each with its own worker process, the bare ones first: the project's `python
worker.py` as deployed (its settings' defaults; `--workflow-cache` sets its sticky cache), the baseline's
`python -m bench.baseline` with the SDK's defaults, its sticky cache on, as a user of plain Temporal gets it
(`--bare-workflow-cache` sets it otherwise, to compare like with like). A driver slot files (starts), then
sends the three updates, and moves on; the timers finish each lifecycle on their own. Throughput is counted
from the server's close times, from the first lifecycle to close to the last, which is the rate the system
sustains once the pipeline is full (the deadline's fixed wait, the same for both, is not in it). Every
complaint must end refunded after the same events as the first one, with one refund in the ledger; the run
fails otherwise. `measure` is the run itself, for `bench.targets` too.
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
from temporalio.client import Client

from bench.baseline import BareLifecycle, BarePlan, bare_cache, start_lifecycle
from bench.processes import WorkerProcess
from bench.report import Row, against, at_least, latency_ms, memory, report, rss_mib
from bench.stage import Stage, deployed_cache, new_queue, stage
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

GOAL_RATIO = 0.6
"""The issue's target against the bare worker with the SDK's defaults (bench 1's goal was 0.33 against a
bare worker without its sticky cache)."""
TEMPLATE_DEADLINE = 10.0


@dataclass
class Options:
    lifecycles: int = 1000
    concurrency: int = 20
    deadline: float = 120.0
    choice_window: float = 2.0
    workflow_cache: int | None = None
    """The project worker's sticky cache; None: as deployed (`REFUND_DESK_WORKFLOW_CACHE`'s default)."""
    bare_workflow_cache: int | None = None
    """The bare worker's sticky cache; None: the SDK's default."""
    max_concurrent_workflow_tasks: int | None = None
    """The project worker's; None: as deployed. The bare worker keeps the SDK's."""
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
    st: Stage,
    options: Options,
    plan: BarePlan,
    updates: list[float],
    deadline: float,
    queue: str,
    worker: WorkerProcess,
) -> Side:
    """`options.lifecycles` bare lifecycles on `queue`, which `worker` polls and nothing else runs on."""
    client = await Client.connect(st.server.address)  # bare: the default converter, no codec

    async def one(index: int) -> None:
        handle, rest = await start_lifecycle(client, plan, id=f"bare-{queue}-{index}", task_queue=queue)
        for activities in rest:
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
    """The project worker's settings the options change; the rest as deployed."""
    settings: dict[str, Any] = {}
    if options.workflow_cache is not None:
        settings["workflow_cache"] = options.workflow_cache
    if options.max_concurrent_workflow_tasks:
        settings["max_concurrent_workflow_tasks"] = options.max_concurrent_workflow_tasks
    return settings


def bare_settings(options: Options) -> dict[str, Any]:
    """The bare worker's settings the options change; the rest the SDK's defaults."""
    return {} if options.bare_workflow_cache is None else {"workflow_cache": options.bare_workflow_cache}


def caches(options: Options) -> dict[str, int]:
    """The sticky cache each worker runs with."""
    project = deployed_cache() if options.workflow_cache is None else options.workflow_cache
    bare = bare_cache(
        {} if options.bare_workflow_cache is None else {"max_cached_workflows": options.bare_workflow_cache}
    )
    return {"project": project, "bare": bare}


def cache_row(options: Options) -> Row:
    c = caches(options)
    project = f"{c['project']}" + (" (as deployed)" if options.workflow_cache is None else "")
    bare = f"{c['bare']}" + (" (the SDK's default)" if options.bare_workflow_cache is None else "")
    return Row("sticky cache (max cached workflows): project / bare", f"{project} / {bare}")


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


@dataclass
class Measured:
    """What `measure` found: both sides, the plan the baseline followed, and the complaints' problems."""

    plan: BarePlan
    trail: list[str]
    project: Side
    bare: Side
    project_updates: list[float]
    bare_updates: list[float]
    problems: list[str]
    server_rss: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.project.steady() / self.bare.steady()


async def measure(
    st: Stage,
    options: Options,
    deadline: float,
    *,
    desk: ComplaintDesk,
    project_worker: WorkerProcess,
    bare_queue: str,
    bare_worker: WorkerProcess,
) -> Measured:
    """The template complaint, then the bare lifecycles, then the complaints, each side on its own queue
    and worker (the desk's task queue is the project's); every complaint then checked."""
    terms = policy(options)
    # The template runs on a deadline of 10 s at most, not to wait the run's whole window before it
    # starts (time enough to file and send three updates on a quiet worker); the bare workflows then wait
    # the run's window, as the complaints do.
    short = replace(options, deadline=min(options.deadline, TEMPLATE_DEADLINE))
    plan, trail = await template(desk, st.client, policy(short))
    plan.timers[0].seconds = options.deadline
    print(f"plan from the template complaint: {plan}", flush=True)

    bare_updates: list[float] = []
    bare = await run_bare(st, options, plan, bare_updates, deadline, bare_queue, bare_worker)
    print(f"bare: {bare.closed} closed, {bare.steady():.1f}/s", flush=True)

    project_updates: list[float] = []
    project, ids = await run_project(st, options, desk, terms, project_updates, deadline)
    print(f"project: {project.closed} closed, {project.steady():.1f}/s", flush=True)
    project.worker_rss = rss_mib(project_worker.pid)
    server_rss = rss_mib(st.server.pid)
    problems = await check(desk, ids, trail)
    return Measured(plan, trail, project, bare, project_updates, bare_updates, problems, server_rss)


async def bench(options: Options) -> int:
    deadline = time.monotonic() + options.timeout
    async with stage("lifecycle") as st:
        queue, bare_queue = new_queue("project"), new_queue("bare")
        project_worker = st.start_worker(queue, **worker_settings(options))
        bare_worker = st.start_worker(bare_queue, baseline=True, **bare_settings(options))
        m = await measure(
            st,
            options,
            deadline,
            desk=st.desk(queue),
            project_worker=project_worker,
            bare_queue=bare_queue,
            bare_worker=bare_worker,
        )
    plan, trail, problems = m.plan, m.trail, m.problems
    project, bare, server_rss = m.project, m.bare, m.server_rss
    ratio = m.ratio
    p, b = latency_ms(m.project_updates), latency_ms(m.bare_updates)
    rows = [
        Row("lifecycles (each side)", f"{options.lifecycles}"),
        Row(
            "plan: activities / updates / timers",
            f"{activities_in(plan)} / {len(plan.per_update)} / {len(plan.timers)}",
        ),
        Row("project lifecycles/s (first to last close)", f"{project.steady():.1f}"),
        Row("bare lifecycles/s (first to last close)", f"{bare.steady():.1f}"),
        Row("ratio project / bare", f"{ratio:.2f}", against(f">= {GOAL_RATIO}", at_least(ratio, GOAL_RATIO))),
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
        cache_row(options),
        Row("complaints not refunded exactly once as planned", f"{len(problems)}", "0"),
    ]
    report(
        "lifecycle",
        f"Lifecycle cost: {options.lifecycles} defect complaints vs {options.lifecycles} bare workflows",
        rows,
        {
            "options": asdict(options),
            "sticky_cache": caches(options),
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
    p.add_argument(
        "--workflow-cache",
        type=int,
        default=None,
        help="the project worker's sticky cache (default: as deployed)",
    )
    p.add_argument(
        "--bare-workflow-cache", type=int, default=None, help="the bare worker's (default: the SDK's, 1000)"
    )
    p.add_argument("--max-concurrent-workflow-tasks", type=int, default=None, help="the project worker's")
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds for the whole run")
    return Options(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
