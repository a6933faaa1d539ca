"""The bare Temporal baseline the benchmarks measure the project against, and its worker.

Bare means what Temporal costs with nothing of ours in it: the default data converter (no pydantic, no
encryption), no-op activities, no ledger, no validators. `BareLifecycle` follows a plan counted off a real
complaint's history (activities at the start, in each update, after each timer), so "the same number of
activities and updates" is measured, not assumed. `BareStorm` waits for an instant shared by thousands
and then writes one row, the bare version of a refund reaching the ledger.

    python -m bench.baseline        # a worker for both (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...)

The worker runs with the SDK's defaults, its sticky cache on (`Worker(max_cached_workflows=1000)`): what a
user of plain Temporal gets, the strongest baseline. It reads where to connect, its task queue and the
ledger's database like `worker.py` (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, REFUND_DESK_TASK_QUEUE,
DATABASE_URL), and none of the project worker's settings: a REFUND_DESK_WORKFLOW_CACHE in the shell is the
project's, not the baseline's. A benchmark that wants the baseline otherwise says so with `BENCH_BARE_*`
variables (`bare_worker_options`), which `bench.stage.Stage.start_worker(..., baseline=True, **settings)`
sets from its settings.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
    from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.worker import Worker

    from ledger.settings import LedgerSettings
    from starter.desk.settings import TemporalSettings

NOOP_TIMEOUT = timedelta(seconds=30)

BARE_SETTINGS = ("workflow_cache", "max_concurrent_workflow_tasks", "max_concurrent_activities")
"""What a benchmark may set on the bare worker, each as `BENCH_BARE_<NAME>`; unset: the SDK's default."""

SDK_DEFAULT_CACHE: int = inspect.signature(Worker.__init__).parameters["max_cached_workflows"].default
"""`Worker(max_cached_workflows=...)` when not given: 1000 in temporalio 1.35."""

MARKS = sa.Table(
    "bench_marks",
    sa.MetaData(),
    sa.Column("workflow_id", sa.String(200), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
"""One row per finished `BareStorm`: the baseline's counterpart of a refund row."""


@dataclass
class Timer:
    seconds: float
    then: int
    """No-op activities after the timer fires."""


@dataclass
class BarePlan:
    at_start: int
    per_update: list[int] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    update_with_start: bool = False
    """The first update comes with the start, in one call (update-with-start), as the project files."""


@dataclass
class StormPlan:
    fire_at: str
    """ISO 8601, with its offset (the default converter carries no datetimes)."""


@activity.defn
async def noop() -> None:
    """Nothing: what is left of a ledger write when the ledger is taken away."""


class Marks:
    """The storm's one activity: a row in the ledger's database, idempotent like a refund."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @activity.defn
    async def mark(self) -> None:
        info = activity.info()
        async with self.engine.begin() as conn:
            exists = await conn.scalar(
                sa.select(sa.func.count()).select_from(MARKS).where(MARKS.c.workflow_id == info.workflow_id)
            )
            if not exists:
                await conn.execute(
                    MARKS.insert().values(
                        workflow_id=info.workflow_id, at=info.current_attempt_scheduled_time
                    )
                )


@workflow.defn
class BareLifecycle:
    def __init__(self) -> None:
        self.updates_done = 0

    @workflow.run
    async def run(self, plan: BarePlan) -> int:
        await _noops(plan.at_start)
        await workflow.wait_condition(lambda: self.updates_done == len(plan.per_update))
        for timer in plan.timers:
            await workflow.sleep(timer.seconds)
            await _noops(timer.then)
        return self.updates_done

    @workflow.update
    async def step(self, activities: int) -> int:
        await _noops(activities)
        self.updates_done += 1
        return self.updates_done


@workflow.defn
class BareStorm:
    @workflow.run
    async def run(self, plan: StormPlan) -> None:
        fire_at = datetime.fromisoformat(plan.fire_at)
        await workflow.sleep(max(fire_at - workflow.now(), timedelta(0)))
        await workflow.execute_activity_method(Marks.mark, start_to_close_timeout=NOOP_TIMEOUT)


async def start_lifecycle(
    client: Client, plan: BarePlan, *, id: str, task_queue: str
) -> tuple[WorkflowHandle[Any, Any], list[int]]:
    """Start a `BareLifecycle` as the project files a complaint: with the plan's first update in the same
    call where the plan says so (update-with-start), else a plain start. Returns the handle and the updates
    (their activities) still to send."""
    if not plan.update_with_start or not plan.per_update:
        handle = await client.start_workflow(BareLifecycle.run, plan, id=id, task_queue=task_queue)
        return handle, list(plan.per_update)
    start = WithStartWorkflowOperation(
        BareLifecycle.run,
        plan,
        id=id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    await client.execute_update_with_start_workflow(
        BareLifecycle.step, plan.per_update[0], start_workflow_operation=start
    )
    return await start.workflow_handle(), list(plan.per_update[1:])


async def _noops(count: int) -> None:
    for _ in range(count):
        await workflow.execute_activity(noop, start_to_close_timeout=NOOP_TIMEOUT)


async def create_marks(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(MARKS.metadata.create_all)


async def count_marks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(MARKS)) or 0)


def bare_worker_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The `Worker` options a benchmark set with `BENCH_BARE_*` variables (in `environ`, by default this
    process's environment); empty (the SDK's defaults, the sticky cache on) unless it set some."""
    environ = os.environ if environ is None else environ
    names = {"workflow_cache": "max_cached_workflows"}
    options: dict[str, Any] = {}
    for setting in BARE_SETTINGS:
        value = environ.get(f"BENCH_BARE_{setting.upper()}", "").strip()
        if value:
            options[names.get(setting, setting)] = int(value)
    return options


def bare_cache(options: Mapping[str, Any]) -> int:
    """The sticky cache a bare worker with `options` runs with."""
    cache: int = options.get("max_cached_workflows", SDK_DEFAULT_CACHE)
    return cache


async def serve(stop: asyncio.Event) -> None:
    temporal = TemporalSettings()  # where to connect and the task queue; its worker options are the project's
    engine = create_async_engine(LedgerSettings().database_url)
    await create_marks(engine)
    client = await Client.connect(temporal.address, namespace=temporal.namespace)
    options = bare_worker_options()
    try:
        async with Worker(
            client,
            task_queue=temporal.task_queue,
            workflows=[BareLifecycle, BareStorm],
            activities=[noop, Marks(engine).mark],
            **options,
        ):
            logging.getLogger("bench.baseline").info(
                "bare worker polling %s with %s", temporal.task_queue, options or "the SDK's defaults"
            )
            await stop.wait()
    finally:
        await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
