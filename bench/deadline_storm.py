"""Benchmark 3, deadline storm: N complaints whose rectification deadlines run out within the same second,
each approved with the refund already chosen, against N bare workflows whose timers fire at one instant and
then write one row.

    .venv/bin/python -m bench.deadline_storm [--complaints 5000] [--concurrency 20] [--workflow-cache 0]

The complaints are filed with a rectification window that ends at one shared instant (each window is that
instant less the moment of filing), approved, and given the customer's choice of a refund. From that instant
the worker must pay every one: the figure is the time until the ledger holds all N refunds, checked to be
exactly one per complaint and per order. The bare workflows, on the same dev server with their own worker,
sleep until an instant of their own and then run one activity that writes one row to the same database; the
figure is the time until all N rows are there. Ratio: bare time / project time (goal >= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client

from bench.baseline import BareStorm, StormPlan, count_marks, create_marks
from bench.report import Row, memory, report, rss_mib
from bench.stage import Stage, new_queue, stage
from bench.workload import APPROVE, BACKEND, DESCRIPTION, bounded, customer, order
from ledger.schema import ComplaintRow, RefundRow
from policy.models import ComplaintKind, RemedyChoice
from policy.settings import PolicySnapshot
from starter.desk import ComplaintDesk

GOAL_RATIO = 0.5


@dataclass
class Options:
    complaints: int = 5000
    concurrency: int = 20
    prepare_rate: float = 3.0
    """Complaints filed, approved and chosen per second, as a guess: it sets how far off the shared
    deadline is. Too high a guess and the first deadlines pass before the last complaints are ready (the
    run stops saying so); too low and the run waits idle. 4.2/s is what 2 cores did with the worker as
    deployed; the run prints the rate it saw."""
    margin: float = 20.0
    workflow_cache: int = 0
    timeout: float = 3600.0


@dataclass
class Storm:
    """One side's storm: when the timers were due and how long until the last write landed."""

    count: int
    fire_at: datetime
    prepare_seconds: float
    written: int = 0
    seconds_to_all: float = float("nan")
    """From the shared instant to the last of the N writes (refund rows or marks)."""
    progress: list[tuple[float, int]] = field(default_factory=list)
    deadlines_within: float = 0.0
    """Seconds between the earliest and the latest deadline (the bare timers share theirs exactly)."""
    after_last_deadline: float = float("nan")
    """From the latest deadline to the last write."""
    worker_rss: dict[str, float] = field(default_factory=dict)


async def wait_for_all(
    count: Callable[[], Awaitable[int]], expected: int, fire_at: datetime, storm: Storm, deadline: float
) -> None:
    """Poll `count` every 50 ms from before `fire_at` until it reaches `expected`."""
    while True:
        written = await count()
        elapsed = (datetime.now(UTC) - fire_at).total_seconds()
        if elapsed >= 0 and (not storm.progress or storm.progress[-1][1] != written):
            storm.progress.append((round(elapsed, 3), written))
        if written >= expected:
            storm.written, storm.seconds_to_all = written, elapsed
            return
        if time.monotonic() > deadline:
            storm.written = written
            raise SystemExit(f"timed out with {written} of {expected} written")
        await asyncio.sleep(0.05)


def fire_instant(options: Options) -> datetime:
    prepare = options.complaints / options.prepare_rate
    return datetime.now(UTC) + timedelta(seconds=prepare + options.margin)


async def project_storm(st: Stage, options: Options, deadline: float) -> tuple[Storm, list[str]]:
    queue = new_queue("storm")
    worker = st.start_worker(queue, workflow_cache=options.workflow_cache)
    desk = st.desk(queue)
    fire_at = fire_instant(options)

    async def prepare(index: int) -> str:
        o = order(queue, index)
        await desk.record_order(o)
        terms = PolicySnapshot(
            rectify_window=fire_at - datetime.now(UTC), review_reminder_before=timedelta(days=30)
        )
        filed = await desk.file(o, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, BACKEND, policy=terms)
        await desk.review(filed.complaint_id, APPROVE)
        await desk.choose_remedy(filed.complaint_id, customer(o), RemedyChoice.REFUND)
        return filed.complaint_id

    began = time.monotonic()
    ids = await bounded(options.concurrency, [lambda i=i: prepare(i) for i in range(options.complaints)])  # type: ignore[misc]
    storm = Storm(options.complaints, fire_at, time.monotonic() - began)
    if datetime.now(UTC) >= fire_at:
        raise SystemExit(
            f"preparing took {storm.prepare_seconds:.0f} s, past the shared deadline: lower --prepare-rate"
        )
    print(
        f"project: {len(ids)} complaints ready in {storm.prepare_seconds:.0f} s "
        f"({len(ids) / storm.prepare_seconds:.1f}/s); deadline at {fire_at}",
        flush=True,
    )

    async def refunds() -> int:
        async with desk.ledger.engine.connect() as conn:
            return int(
                await conn.scalar(
                    select(func.count()).select_from(RefundRow).where(RefundRow.source_id.in_(ids))
                )
                or 0
            )

    await wait_for_all(refunds, len(ids), fire_at, storm, deadline)
    storm.worker_rss = rss_mib(worker.pid)
    return storm, await exactly_once(desk, ids, storm)


async def exactly_once(desk: ComplaintDesk, ids: list[str], storm: Storm) -> list[str]:
    """One refund per complaint and per order; and how far the deadlines fell from the shared instant (a
    deadline counts from the complaint's first workflow task, which a busy worker starts a little late)."""
    problems: list[str] = []
    async with desk.ledger.engine.connect() as conn:
        per_source = dict(
            (
                await conn.execute(
                    select(RefundRow.source_id, func.count())
                    .where(RefundRow.source_id.in_(ids))
                    .group_by(RefundRow.source_id)
                )
            ).all()
        )
        per_order = (
            await conn.execute(
                select(RefundRow.order_id, func.count()).group_by(RefundRow.order_id).having(func.count() > 1)
            )
        ).all()
        deadlines = (
            (await conn.execute(select(ComplaintRow.deadline).where(ComplaintRow.complaint_id.in_(ids))))
            .scalars()
            .all()
        )
    problems += [f"{cid}: {per_source.get(cid, 0)} refunds" for cid in ids if per_source.get(cid, 0) != 1]
    problems += [f"order {order_id}: {count} refunds" for order_id, count in per_order]
    offsets = [
        (d.replace(tzinfo=d.tzinfo or UTC) - storm.fire_at).total_seconds()
        for d in deadlines
        if d is not None
    ]
    storm.deadlines_within = round(max(offsets) - min(offsets), 3) if offsets else float("nan")
    storm.after_last_deadline = round(storm.seconds_to_all - max(offsets, default=0.0), 3)
    return problems


async def bare_storm(st: Stage, options: Options, deadline: float) -> Storm:
    queue = new_queue("bare-storm")
    worker = st.start_worker(queue, baseline=True, workflow_cache=options.workflow_cache)
    client = await Client.connect(st.server.address)
    engine = create_async_engine(st.database_url)
    await create_marks(engine)
    fire_at = datetime.now(UTC) + timedelta(seconds=options.complaints / 100 + options.margin)
    began = time.monotonic()
    await bounded(
        options.concurrency,
        [
            lambda i=i: client.start_workflow(
                BareStorm.run, StormPlan(fire_at.isoformat()), id=f"{queue}-{i}", task_queue=queue
            )  # type: ignore[misc]
            for i in range(options.complaints)
        ],
    )
    storm = Storm(options.complaints, fire_at, time.monotonic() - began)
    print(
        f"bare: {options.complaints} workflows started in {storm.prepare_seconds:.0f} s; timers at {fire_at}",
        flush=True,
    )
    try:
        await wait_for_all(lambda: count_marks(engine), options.complaints, fire_at, storm, deadline)
    finally:
        await engine.dispose()
    storm.worker_rss = rss_mib(worker.pid)
    return storm


async def bench(options: Options) -> int:
    deadline = time.monotonic() + options.timeout
    async with stage("deadline_storm") as st:
        bare = await bare_storm(st, options, deadline)
        print(f"bare: all {bare.written} rows {bare.seconds_to_all:.1f} s after the instant", flush=True)
        project, problems = await project_storm(st, options, deadline)
        print(
            f"project: all {project.written} refunds {project.seconds_to_all:.1f} s after the deadline",
            flush=True,
        )
        server_rss = rss_mib(st.server.pid)

    ratio = bare.seconds_to_all / project.seconds_to_all
    rows = [
        Row("complaints (and bare workflows)", f"{options.complaints}"),
        Row("project: deadline to every refund in the ledger", f"{project.seconds_to_all:.1f} s"),
        Row("bare: timer to every row written", f"{bare.seconds_to_all:.1f} s"),
        Row("ratio bare / project", f"{ratio:.2f}", f">= {GOAL_RATIO}"),
        Row("project refunds per second in the storm", f"{project.written / project.seconds_to_all:.0f}"),
        Row("bare rows per second in the storm", f"{bare.written / bare.seconds_to_all:.0f}"),
        Row("project: filing, approving, choosing all", f"{project.prepare_seconds:.0f} s"),
        Row("bare: starting all", f"{bare.prepare_seconds:.0f} s"),
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
        Row("project: the deadlines fell within", f"{project.deadlines_within:.2f} s", "< 1 s"),
        Row("project: latest deadline to every refund", f"{project.after_last_deadline:.1f} s"),
        Row("complaints or orders refunded other than exactly once", f"{len(problems)}", "0"),
    ]
    report(
        "deadline_storm",
        f"Deadline storm: {options.complaints} complaints due in one second vs as many bare timers",
        rows,
        {
            "options": asdict(options),
            "project": asdict(project),
            "bare": asdict(bare),
            "ratio": ratio,
            "dev_server_rss": server_rss,
            "problems": problems[:50],
        },
    )
    return 1 if problems else 0


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.deadline_storm", description=__doc__.split("\n\n")[0])
    d = Options()
    p.add_argument("--complaints", type=int, default=d.complaints)
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="complaints being prepared at once")
    p.add_argument(
        "--prepare-rate", type=float, default=d.prepare_rate, help="guess, complaints/s: sets the deadline"
    )
    p.add_argument("--margin", type=float, default=d.margin, help="seconds added to the deadline's distance")
    p.add_argument("--workflow-cache", type=int, default=d.workflow_cache, help="both workers' sticky cache")
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds for the whole run")
    return Options(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
