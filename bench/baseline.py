"""The bare Temporal baseline the benchmarks measure the project against, and its worker.

Bare means what Temporal costs with nothing of ours in it: the default data converter (no pydantic, no
encryption), no-op activities, no ledger, no validators. `BareLifecycle` follows a plan counted off a real
complaint's history (activities at the start, in each update, after each timer), so "the same number of
activities and updates" is measured, not assumed. `BareStorm` waits for an instant shared by thousands
and then writes one row, the bare version of a refund reaching the ledger.

    python -m bench.baseline        # a worker for both, configured like worker.py (TEMPORAL_ADDRESS, ...)
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
    from temporalio.client import Client
    from temporalio.worker import Worker

    from ledger.settings import LedgerSettings
    from starter.desk.settings import TemporalSettings

NOOP_TIMEOUT = timedelta(seconds=30)

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


async def _noops(count: int) -> None:
    for _ in range(count):
        await workflow.execute_activity(noop, start_to_close_timeout=NOOP_TIMEOUT)


async def create_marks(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(MARKS.metadata.create_all)


async def count_marks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(MARKS)) or 0)


async def serve(stop: asyncio.Event) -> None:
    temporal = TemporalSettings()
    engine = create_async_engine(LedgerSettings().database_url)
    await create_marks(engine)
    client = await Client.connect(temporal.address, namespace=temporal.namespace)
    try:
        async with Worker(
            client,
            task_queue=temporal.task_queue,
            workflows=[BareLifecycle, BareStorm],
            activities=[noop, Marks(engine).mark],
            **temporal.worker_options(),
        ):
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
