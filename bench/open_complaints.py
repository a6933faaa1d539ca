"""Benchmark 2, open complaints at scale: N complaints filed and left waiting on their 5-day deadlines, with
the memory of the worker and of the dev server, against N bare workflows waiting on the same timer.

    .venv/bin/python -m bench.open_complaints [--complaints 10000] [--concurrency 50] [--cached 10000]

Three phases on one dev server:
1. the bare workflows (`python -m bench.baseline`): started, then the bare worker's memory;
2. the complaints, filed through `ComplaintDesk.file` against `python worker.py` as deployed (sticky cache
   `REFUND_DESK_WORKFLOW_CACHE`, 0 by default): the time to file them all, the time until every one is
   waiting (its filing recorded in the ledger), then the worker's and the server's memory;
3. the worst case of the cache: a second project worker with `--cached` workflows of sticky cache replaces
   the first, every complaint is queried (which puts it in that worker's cache), and its memory is read
   again, with the queries' latency with and without the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.baseline import BareLifecycle, BarePlan, Timer
from bench.processes import WorkerProcess
from bench.report import Row, latency_ms, memory, report, rss_mib
from bench.stage import Stage, new_queue, stage
from bench.workload import BACKEND, DESCRIPTION, bounded, order, timed
from ledger.schema import NotificationRow
from policy.models import ComplaintKind
from starter.desk import ComplaintDesk

GOAL_WORKER_MIB = 1024


@dataclass
class Options:
    complaints: int = 10_000
    concurrency: int = 50
    workflow_cache: int = 0
    cached: int = 10_000
    timeout: float = 3600.0


@dataclass
class Figures:
    start_seconds: float = 0.0
    """Until the last start (or filing) call returned."""
    settled_seconds: float = 0.0
    """Until every one had done its first work and waited on its timer."""
    worker_rss: dict[str, float] = field(default_factory=dict)
    server_rss: dict[str, float] = field(default_factory=dict)


async def bare_phase(st: Stage, options: Options) -> Figures:
    """N bare workflows that do what a filing does (two activities) and wait five days."""
    queue = new_queue("bare-open")
    worker = st.start_worker(queue, baseline=True, workflow_cache=options.workflow_cache)
    client = await Client.connect(st.server.address)
    plan = BarePlan(at_start=2, timers=[Timer(seconds=timedelta(days=5).total_seconds(), then=0)])
    figures = Figures()
    began = time.monotonic()
    await bounded(
        options.concurrency,
        [
            lambda i=i: client.start_workflow(BareLifecycle.run, plan, id=f"{queue}-{i}", task_queue=queue)  # type: ignore[misc]
            for i in range(options.complaints)
        ],
    )
    figures.start_seconds = time.monotonic() - began
    await until_quiet(st, queue)
    figures.settled_seconds = time.monotonic() - began
    figures.worker_rss = rss_mib(worker.pid)
    figures.server_rss = rss_mib(st.server.pid)
    await worker.stop()
    return figures


async def until_quiet(st: Stage, queue: str) -> None:
    """Until the task queue has no backlog of workflow or activity tasks."""
    while True:
        backlog = 0
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            described = await st.client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace="default",
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=kind,
                    report_stats=True,
                )
            )
            backlog += described.task_queue_status.backlog_count_hint
        if backlog == 0:
            return
        await asyncio.sleep(0.5)


async def project_phase(
    st: Stage, options: Options, deadline: float
) -> tuple[Figures, list[str], WorkerProcess]:
    queue = new_queue("open")
    worker = st.start_worker(queue, workflow_cache=options.workflow_cache)
    desk = st.desk(queue)
    figures = Figures()
    began = time.monotonic()

    async def file(index: int) -> str:
        o = order(queue, index)
        await desk.record_order(o)
        return (await desk.file(o, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, BACKEND)).complaint_id

    ids = await bounded(options.concurrency, [lambda i=i: file(i) for i in range(options.complaints)])  # type: ignore[misc]
    figures.start_seconds = time.monotonic() - began
    while await filed_notices(desk, queue) < options.complaints:
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the complaints to settle")
        await asyncio.sleep(0.5)
    figures.settled_seconds = time.monotonic() - began
    await asyncio.sleep(2)  # the last tasks' memory, not a task in flight
    figures.worker_rss = rss_mib(worker.pid)
    figures.server_rss = rss_mib(st.server.pid)
    return figures, ids, worker


async def filed_notices(desk: ComplaintDesk, queue: str) -> int:
    """Complaints of this run whose filing notice (the last thing filing does) is in the outbox."""
    async with desk.ledger.engine.connect() as conn:
        return int(
            await conn.scalar(
                select(func.count())
                .select_from(NotificationRow)
                .where(
                    NotificationRow.template == "complaint_filed",
                    NotificationRow.complaint_id.like(f"{queue}-%"),
                )
            )
            or 0
        )


async def query_all(desk: ComplaintDesk, ids: list[str], concurrency: int) -> list[float]:
    latencies: list[float] = []
    await bounded(concurrency, [lambda cid=cid: timed(desk.get(cid), latencies) for cid in ids])  # type: ignore[misc]
    return latencies


async def bench(options: Options) -> int:
    deadline = time.monotonic() + options.timeout
    async with stage("open_complaints") as st:
        bare = await bare_phase(st, options)
        print(f"bare: all waiting after {bare.settled_seconds:.0f} s, worker {bare.worker_rss}", flush=True)
        project, ids, first = await project_phase(st, options, deadline)
        print(
            f"project: {len(ids)} waiting after {project.settled_seconds:.0f} s, worker {project.worker_rss}",
            flush=True,
        )
        desk = st.desk(first.environment["REFUND_DESK_TASK_QUEUE"])
        uncached = await query_all(desk, ids[: min(len(ids), 1000)], options.concurrency)
        await first.stop()
        cached_worker = st.start_worker(
            first.environment["REFUND_DESK_TASK_QUEUE"], workflow_cache=options.cached
        )
        filling = await query_all(desk, ids, options.concurrency)
        from_cache = await query_all(desk, ids[: min(len(ids), 1000)], options.concurrency)
        await asyncio.sleep(2)
        cached_rss = rss_mib(cached_worker.pid)
        server_after = rss_mib(st.server.pid)

    u, f, c = latency_ms(uncached), latency_ms(filling), latency_ms(from_cache)
    rows = [
        Row("open complaints (and bare workflows)", f"{options.complaints}"),
        Row(
            "project: time to file them all",
            f"{project.start_seconds:.0f} s ({options.complaints / project.start_seconds:.0f}/s)",
        ),
        Row("project: time until all are waiting", f"{project.settled_seconds:.0f} s"),
        Row(
            "bare: time to start them all",
            f"{bare.start_seconds:.0f} s ({options.complaints / bare.start_seconds:.0f}/s)",
        ),
        Row("bare: time until all are waiting", f"{bare.settled_seconds:.0f} s"),
        Row(
            f"project worker RSS, sticky cache {options.workflow_cache} (as deployed)",
            f"{project.worker_rss.get('rss_mib')} MiB (peak {project.worker_rss.get('peak_rss_mib')})",
            f"< {GOAL_WORKER_MIB} MiB",
        ),
        Row(
            f"project worker RSS, sticky cache {options.cached}, all {options.complaints} cached",
            f"{cached_rss.get('rss_mib')} MiB (peak {cached_rss.get('peak_rss_mib')})",
            f"< {GOAL_WORKER_MIB} MiB",
        ),
        Row(
            f"bare worker RSS, sticky cache {options.workflow_cache}",
            f"{bare.worker_rss.get('rss_mib')} MiB (peak {bare.worker_rss.get('peak_rss_mib')})",
        ),
        Row("dev server RSS with all open (bare and project)", f"{project.server_rss.get('rss_mib')} MiB"),
        Row(
            "dev server RSS at the end / peak",
            memory(server_after),
        ),
        Row("GET state (query), no cache: p50 / p99", f"{u.get('p50_ms')} / {u.get('p99_ms')} ms"),
        Row("GET state, first into the cache: p50 / p99", f"{f.get('p50_ms')} / {f.get('p99_ms')} ms"),
        Row("GET state, from the cache: p50 / p99", f"{c.get('p50_ms')} / {c.get('p99_ms')} ms"),
    ]
    report(
        "open_complaints",
        f"Open complaints at scale: {options.complaints} waiting on 5-day deadlines",
        rows,
        {
            "options": asdict(options),
            "project": asdict(project),
            "bare": asdict(bare),
            "cached_worker_rss": cached_rss,
            "dev_server_rss_end": server_after,
            "query_no_cache": u,
            "query_filling_cache": f,
            "query_from_cache": c,
        },
    )
    worst = max(project.worker_rss.get("rss_mib", 0), cached_rss.get("rss_mib", 0))
    return 0 if worst < GOAL_WORKER_MIB else 1


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.open_complaints", description=__doc__.split("\n\n")[0])
    d = Options()
    p.add_argument("--complaints", type=int, default=d.complaints)
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="filings (and queries) at once")
    p.add_argument(
        "--workflow-cache", type=int, default=d.workflow_cache, help="the deployed worker's sticky cache"
    )
    p.add_argument("--cached", type=int, default=d.cached, help="the sticky cache of phase 3's worker")
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds for the whole run")
    return Options(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
