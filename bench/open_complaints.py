"""Benchmark 2, open complaints at scale: N complaints filed and left waiting on their 5-day deadlines, with
the memory of the worker and of the dev server, against N bare workflows waiting on the same timer.

    .venv/bin/python -m bench.open_complaints [--complaints 10000] [--concurrency 50] [--cached N]

Three phases on one dev server:
1. the bare workflows (`python -m bench.baseline`, with the deployed worker's sticky cache): started,
   then the bare worker's memory;
2. the complaints, filed through `ComplaintDesk.file` against `python worker.py` as deployed (its sticky
   cache `REFUND_DESK_WORKFLOW_CACHE`, off by default, `--workflow-cache` to set it): the time to file them
   all, the time until every one is waiting (its filing recorded in the ledger), then the worker's memory
   (with its cache full, the last filed in it, if it has one) and the server's; then a query on the last
   1,000 filed, from that cache if there is one;
3. the cache turned on: a second project worker with a cache of `--cached` (by default the bound
   `CACHE_WITH_MEMORY_BOUND`, 3,000, that docs/settings.md gives a deployment turning it on) replaces the
   first; queries put the first 100 complaints into its cache (its memory read), then all the others, which
   fill it (read again): the difference over the complaints it holds is the memory of one cached complaint
   (`bench.cache_memory.fill_cache`), with the queries' latency into the cache (a replay each) and from it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.baseline import BareLifecycle, BarePlan, Timer
from bench.cache_memory import GOAL_WORKER_MIB, file_waiting, fill_cache, query_each
from bench.processes import WorkerProcess
from bench.report import Row, latency_ms, memory, report, rss_mib
from bench.stage import Stage, deployed_cache, new_queue, stage
from bench.workload import bounded
from starter.desk.settings import CACHE_WITH_MEMORY_BOUND

SAMPLE = 1_000
"""Complaints queried from the deployed worker's cache."""


@dataclass
class Options:
    complaints: int = 10_000
    concurrency: int = 50
    workflow_cache: int | None = None
    """The deployed worker's sticky cache; None: as deployed (REFUND_DESK_WORKFLOW_CACHE or its default)."""
    cached: int = CACHE_WITH_MEMORY_BOUND
    """Phase 3's worker's sticky cache."""
    warm: int = 100
    timeout: float = 3600.0

    def deployed_cache(self) -> int:
        """The sticky cache of the deployed worker: `--workflow-cache`, else what `python worker.py` reads
        from this environment (it inherits it)."""
        return deployed_cache() if self.workflow_cache is None else self.workflow_cache


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
    worker = st.start_worker(queue, baseline=True, workflow_cache=options.deployed_cache())
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
    """The complaints filed against the deployed worker, until each waits on its deadline; its memory then,
    with its cache full (or holding them all, if it holds more)."""
    queue = new_queue("open")
    settings: dict[str, Any] = {}
    if options.workflow_cache is not None:
        settings["workflow_cache"] = options.workflow_cache
    worker = st.start_worker(queue, **settings)
    figures = Figures()
    began = time.monotonic()
    ids, figures.start_seconds = await file_waiting(
        st, queue, options.complaints, options.concurrency, deadline
    )
    figures.settled_seconds = time.monotonic() - began
    await asyncio.sleep(2)  # the last tasks' memory, not a task in flight
    figures.worker_rss = rss_mib(worker.pid)
    figures.server_rss = rss_mib(st.server.pid)
    return figures, ids, worker


async def bench(options: Options) -> int:
    deadline = time.monotonic() + options.timeout
    deployed = options.deployed_cache()
    cached = options.cached
    async with stage("open_complaints") as st:
        bare = await bare_phase(st, options)
        print(f"bare: all waiting after {bare.settled_seconds:.0f} s, worker {bare.worker_rss}", flush=True)
        project, ids, first = await project_phase(st, options, deadline)
        print(
            f"project: {len(ids)} waiting after {project.settled_seconds:.0f} s, worker {project.worker_rss}",
            flush=True,
        )
        sample = ids[-min(len(ids), SAMPLE, deployed) :] if deployed else []
        asked = await query_each(st.client, sample, options.concurrency)
        deployed_queries = latency_ms(asked.latencies)
        queue = first.environment["REFUND_DESK_TASK_QUEUE"]
        await first.stop()
        fill, _ = await fill_cache(
            st, queue, ids, cached=cached, warm=options.warm, concurrency=options.concurrency
        )
        server_after = rss_mib(st.server.pid)

    d, f, c = deployed_queries, fill.into_cache, fill.from_cache
    in_cache = min(deployed, options.complaints)
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
            f"project worker RSS as deployed: sticky cache {deployed}, {in_cache} cached",
            f"{project.worker_rss.get('rss_mib')} MiB (peak {project.worker_rss.get('peak_rss_mib')})",
            f"< {GOAL_WORKER_MIB} MiB",
        ),
        Row(
            f"project worker RSS, sticky cache {cached}: {fill.warm} cached",
            f"{fill.rss_warm.get('rss_mib')} MiB",
        ),
        Row(
            f"project worker RSS, sticky cache {cached}: {min(cached, fill.complaints)} cached",
            f"{fill.rss_filled.get('rss_mib')} MiB (peak {fill.rss_filled.get('peak_rss_mib')})",
            f"< {GOAL_WORKER_MIB} MiB",
        ),
        Row(
            f"projected: all {options.complaints} cached (per cached complaint)",
            f"{fill.projected_mib(options.complaints)} MiB",
        ),
        Row("per cached complaint", f"{fill.per_complaint_kib} KiB"),
        Row(
            f"bare worker RSS, sticky cache {deployed}",
            f"{bare.worker_rss.get('rss_mib')} MiB (peak {bare.worker_rss.get('peak_rss_mib')})",
        ),
        Row("dev server RSS with all open (bare and project)", f"{project.server_rss.get('rss_mib')} MiB"),
        Row("dev server RSS at the end / peak", memory(server_after)),
        Row(
            f"query, from the deployed worker's cache ({d.get('count', 0)}): p50 / p99",
            f"{d.get('p50_ms')} / {d.get('p99_ms')} ms",
        ),
        Row("query, into phase 3's cache (a replay): p50 / p99", f"{f.get('p50_ms')} / {f.get('p99_ms')} ms"),
        Row("query, from phase 3's cache: p50 / p99", f"{c.get('p50_ms')} / {c.get('p99_ms')} ms"),
        Row("queries asked again after a failed attempt", f"{asked.retried + fill.retried}"),
    ]
    report(
        "open_complaints",
        f"Open complaints at scale: {options.complaints} waiting on 5-day deadlines",
        rows,
        {
            "options": asdict(options),
            "deployed_cache": deployed,
            "project": asdict(project),
            "bare": asdict(bare),
            "cache_fill": asdict(fill),
            "per_cached_complaint_kib": fill.per_complaint_kib,
            "dev_server_rss_end": server_after,
            "query_deployed_cache": d,
            "query_into_cache": f,
            "query_from_cache": c,
        },
    )
    worst = max(project.worker_rss.get("rss_mib", 0), fill.rss_filled.get("rss_mib", 0))
    return 0 if worst < GOAL_WORKER_MIB else 1


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.open_complaints", description=__doc__.split("\n\n")[0])
    d = Options()
    p.add_argument("--complaints", type=int, default=d.complaints)
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="filings (and queries) at once")
    p.add_argument(
        "--workflow-cache",
        type=int,
        default=d.workflow_cache,
        help="the deployed worker's sticky cache (default: as deployed, REFUND_DESK_WORKFLOW_CACHE's)",
    )
    p.add_argument(
        "--cached",
        type=int,
        default=d.cached,
        help=f"the sticky cache of phase 3's worker (default: {d.cached}, the bound for a cache turned on)",
    )
    p.add_argument(
        "--warm", type=int, default=d.warm, help="complaints cached before phase 3's first reading"
    )
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds for the whole run")
    return Options(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
