"""Benchmark 5, the time-skipping suite: the wall time of one whole 5-day defect lifecycle on
`temporal-test-server`, against the bare Temporal baseline on the same server in the same run.

A lifecycle is the README's walk-through with the access detour of R9/R10: the backend files a major
defect (default policy: 5-day rectify window, 3-day remedy choice window), support approves and asks for
server access, the customer grants it with sealed credentials, and nobody fixes or chooses anything, so the
server skips to the reminder, the deadline and the end of the choice window and the complaint ends
REFUNDED with one refund in the ledger. It runs as a test runs it (`tests/conftest.py`): the real desk and
the real worker (in process, the encrypting converter, a migrated SQLite ledger), waiting for the outcome
with time skipping unlocked.

The baseline is `bench.baseline.BareLifecycle` on its own task queue with the default converter, following
a plan counted off the first project lifecycle's history: no-op activities at the start, in each update and
after each timer that fired, and those timers' durations. Lifecycles alternate (project, baseline, ...)
so both see the server's state grow alike.

    .venv/bin/python -m bench.time_skipping                    # 200 lifecycles of each, one at a time
    .venv/bin/python -m bench.time_skipping --concurrency 20   # then 200 more of each, in waves of 20
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

from google.protobuf.empty_pb2 import Empty
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.baseline import SDK_DEFAULT_CACHE, BareLifecycle, BarePlan, noop, start_lifecycle
from bench.report import Row, against, at_most, latency_ms, report
from bench.workload import plan_of
from ledger.migrate import upgrade
from ledger.repository import Ledger
from ledger.vault import VaultKeyring
from policy.complaint import ComplaintState, Review
from policy.credentials import ServerCredentials
from policy.ids import workflow_id_of
from policy.models import (
    Actor,
    ComplaintKind,
    ComplaintStatus,
    Money,
    Order,
    Product,
    ProductKind,
    ReviewDecision,
    Role,
)
from policy.settings import PolicySnapshot
from starter.binaries import tool_path
from starter.desk import ComplaintDesk, register_search_attributes
from starter.desk.codec import PayloadKeyring, encrypting_converter
from worker import build_worker

T = TypeVar("T")

NAME = "time_skipping"
GOAL_MS = 100.0
"""The issue's target for one whole lifecycle (its mean wall time), as `bench.targets` quotes it."""
PRICE = Decimal("49.90")
DESCRIPTION = "The plugin returns HTTP 500 on every page since version 2.3; logs attached to the ticket."
SUPPORT = Actor(role=Role.SUPPORT, id="alice")
APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="reproduced on staging")
SECRET = "bench-" + "s3cret-" * 4
LIFECYCLE_TIMEOUT = 60.0
"""Seconds one lifecycle may take before the run counts it failed (one at a time, the run then stops)."""

QUIET_RUNTIME = Runtime(
    telemetry=TelemetryConfig(
        logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    )
)
"""As in the tests: the test server lacks a capability the SDK core warns about on every worker start."""


# ------------------------------------------------------------------------------------- time skipping


async def lock(client: Client) -> None:
    await client.test_service.lock_time_skipping(LockTimeSkippingRequest())


async def unlock(client: Client) -> None:
    await client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())


@asynccontextmanager
async def skipping(client: Client) -> AsyncIterator[None]:
    """Time skips inside the block whenever no workflow has work to do: `TimeSkippingDesk.time_skipping`
    of the tests, and what `handle.result()` does for workflows the test environment started."""
    await unlock(client)
    try:
        yield
    finally:
        await lock(client)


async def server_now(client: Client) -> datetime:
    response = await client.test_service.get_current_time(Empty())
    return response.time.ToDatetime().replace(tzinfo=UTC)


class ServerClockDesk(ComplaintDesk):
    """The real desk, judging intake at the server's clock, which runs days ahead of the wall clock once
    time has skipped (`TimeSkippingDesk.now` of the tests; its `outcome` is `skipping` around the desk's)."""

    async def now(self) -> datetime:
        return await server_now(self.client)


# ------------------------------------------------------------------------------------------ lifecycles


@dataclass
class Side:
    """One side of the comparison: its wall times per lifecycle, in the order they ran, and failures."""

    seconds: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)
    """Each step's wall time per lifecycle (filing, each update, the wait for the outcome)."""
    failures: list[str] = field(default_factory=list)

    def add(self, steps: Steps) -> None:
        self.seconds.append(steps.total)
        for name, seconds in steps.times.items():
            self.phases.setdefault(name, []).append(seconds)

    def figures(self) -> dict[str, Any]:
        return {
            **latency_ms(self.seconds),
            "cold_ms": round(self.seconds[0] * 1000, 1) if self.seconds else None,
            "warm": latency_ms(self.seconds[1:]),
            "stdev_ms": round(statistics.stdev(self.seconds) * 1000, 1) if len(self.seconds) > 1 else None,
            "phases_mean_ms": {
                name: round(statistics.fmean(times) * 1000, 1) for name, times in self.phases.items()
            },
            "failures": self.failures,
        }


class Steps:
    """A lifecycle's stopwatch: `lap(name)` ends the step begun at the previous lap (or at the start)."""

    def __init__(self) -> None:
        self.began = self.last = time.perf_counter()
        self.times: dict[str, float] = {}
        self.ident = ""

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self.last
        self.last = now

    @property
    def total(self) -> float:
        return self.last - self.began


@dataclass
class Project:
    desk: ServerClockDesk
    ledger: Ledger
    access: bool

    def order(self, placed_at: datetime) -> Order:
        return Order(
            order_id=f"ord-{uuid.uuid4().hex[:12]}",
            customer_id=f"cust-{uuid.uuid4().hex[:8]}",
            product=Product(sku="plugin-seo-pro", kind=ProductKind.SOFTWARE, name="SEO Pro plugin"),
            price=Money(amount=PRICE, currency="EUR"),
            placed_at=placed_at,
        )

    async def act(self) -> Steps:
        """Filing and the three updates, each timed (time stands still: the run holds the lock); the order
        is made first, untimed, as a test makes it before it starts."""
        order = self.order(await server_now(self.desk.client))
        customer = Actor(role=Role.CUSTOMER, id=order.customer_id)
        credentials = ServerCredentials(host="shop.example.net", username="deploy", secret=SecretStr(SECRET))
        steps = Steps()
        state = await self.desk.file(
            order, ComplaintKind.MAJOR_DEFECT, DESCRIPTION, customer, policy=PolicySnapshot()
        )
        steps.ident = complaint_id = state.complaint_id
        steps.lap("file")
        await self.desk.review(complaint_id, APPROVE)
        steps.lap("review")
        if self.access:
            await self.desk.request_access(complaint_id, SUPPORT, scope="ssh", reason="inspect the logs")
            steps.lap("request_access")
            await self.desk.grant_access(complaint_id, customer, credentials)  # sealed by the desk
            steps.lap("grant_access")
        return steps

    async def finish(self, steps: Steps) -> str:
        """Wait for the outcome (the caller lets time skip meanwhile), then check it, untimed."""
        final = await self.desk.outcome(steps.ident)
        steps.lap("outcome")
        await self.check(final, steps.ident)
        return steps.ident

    async def check(self, final: ComplaintState, complaint_id: str) -> None:
        problems = []
        if final.status is not ComplaintStatus.REFUNDED:
            problems.append(f"ended {final.status.value}")
        refund = final.resolution.refund if final.resolution else None
        if refund is None or refund.amount.amount != PRICE:
            problems.append(f"refund {refund}")
        if self.access and (
            final.access is None or not (final.access.credentials_ref or "").startswith("vault_")
        ):
            problems.append("no vault reference for the granted access")
        refunds = await self.ledger.refunds_for("complaint", complaint_id)
        if len(refunds) != 1:
            problems.append(f"{len(refunds)} refunds in the ledger")
        if problems:
            raise AssertionError(f"{complaint_id}: {'; '.join(problems)}")

    async def history(self, complaint_id: str) -> WorkflowHistory:
        handle = self.desk.client.get_workflow_handle(workflow_id_of(complaint_id))
        return await handle.fetch_history()


@dataclass
class Baseline:
    client: Client
    """A client on the same server with the default converter (no pydantic, no encryption)."""
    task_queue: str
    plan: BarePlan | None = None

    async def act(self) -> Steps:
        """The bare lifecycle's start (with its first update, where the project files with one) and the
        plan's updates, one after the other."""
        assert self.plan is not None
        steps = Steps()
        steps.ident = f"bare-{uuid.uuid4().hex[:12]}"
        handle, rest = await start_lifecycle(
            self.client, self.plan, id=steps.ident, task_queue=self.task_queue
        )
        steps.lap("start")
        for i, activities in enumerate(rest):
            await handle.execute_update(BareLifecycle.step, activities)
            steps.lap(f"u{i + 1}")
        return steps

    async def finish(self, steps: Steps) -> str:
        assert self.plan is not None
        result = await self.client.get_workflow_handle(steps.ident, result_type=int).result()
        steps.lap("outcome")
        if result != len(self.plan.per_update):
            raise AssertionError(f"{steps.ident}: {result} updates done, {len(self.plan.per_update)} sent")
        return steps.ident


def census(history: WorkflowHistory) -> dict[str, int]:
    """What a history holds: its events, and how many of the kinds that cost a round trip each."""
    counted = {
        "events": len(history.events),
        "workflow_tasks": 0,
        "activities": 0,
        "timers_started": 0,
        "timers_fired": 0,
        "timers_canceled": 0,
        "updates": 0,
        "search_attribute_upserts": 0,
    }
    names = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_tasks",
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activities",
        EventType.EVENT_TYPE_TIMER_STARTED: "timers_started",
        EventType.EVENT_TYPE_TIMER_FIRED: "timers_fired",
        EventType.EVENT_TYPE_TIMER_CANCELED: "timers_canceled",
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "updates",
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "search_attribute_upserts",
    }
    for event in history.events:
        name = names.get(event.event_type)
        if name is not None:
            counted[name] += 1
    return counted


# --------------------------------------------------------------------------------------------- driving


class Lifecycles(Protocol):
    async def act(self) -> Steps: ...

    async def finish(self, steps: Steps) -> str: ...


async def attempt(side: Side, call: Awaitable[T]) -> T | None:
    """`call` within `LIFECYCLE_TIMEOUT`; None (and the failure kept for the report) if it fails."""
    try:
        async with asyncio.timeout(LIFECYCLE_TIMEOUT):
            return await call
    except Exception as exc:
        side.failures.append(f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc))
        return None


async def finished(side: Side, lifecycles: Lifecycles, steps: Steps) -> str | None:
    """Wait for the lifecycle's end (time skipping is the caller's); its id once counted in `side`."""
    ident = await attempt(side, lifecycles.finish(steps))
    if ident is not None:
        side.add(steps)
    return ident


async def one(side: Side, lifecycles: Lifecycles, skipper: Client) -> str | None:
    """One lifecycle as a test runs it: acting while time stands still, then waiting while it skips."""
    steps = await attempt(side, lifecycles.act())
    if steps is None:
        return None
    async with skipping(skipper):
        return await finished(side, lifecycles, steps)


async def sequential(
    project: Project, baseline: Baseline, count: int, mine: Side, bare: Side, figures: dict[str, Any]
) -> None:
    """`count` of each, one at a time, alternating; the first project lifecycle's history sets the plan."""
    skipper = project.desk.client
    first = await one(mine, project, skipper)
    if first is None:
        raise RuntimeError(f"the first project lifecycle failed: {mine.failures[0]}")
    history = await project.history(first)
    baseline.plan = plan_of(history)
    figures["plan"] = asdict(baseline.plan)
    figures["project_history"] = census(history)
    bare_id = await one(bare, baseline, skipper)
    if bare_id is None:
        raise RuntimeError(f"the first bare lifecycle failed: {bare.failures[0]}")
    figures["baseline_history"] = census(await baseline.client.get_workflow_handle(bare_id).fetch_history())
    print(f"plan {figures['plan']}", flush=True)
    print(f"cold: project {ms(mine.seconds[0])}, baseline {ms(bare.seconds[0])}", flush=True)
    for i in range(1, count):
        await one(mine, project, skipper)
        await one(bare, baseline, skipper)
        if mine.failures or bare.failures:
            break
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{count}", flush=True)


async def in_waves(lifecycles: Lifecycles, count: int, width: int, skipper: Client) -> tuple[Side, float]:
    """`count` lifecycles in waves of `width`, as a suite running tests side by side on one server would:
    a wave's lifecycles all act at once while time stands still, then all wait while it skips. Returns
    the side and the wall seconds of all the waves."""
    side = Side()
    began = time.perf_counter()
    for start in range(0, count, width):
        acted = await asyncio.gather(
            *(attempt(side, lifecycles.act()) for _ in range(min(width, count - start)))
        )
        async with skipping(skipper):
            await asyncio.gather(*(finished(side, lifecycles, steps) for steps in acted if steps is not None))
        if side.failures:
            break
    return side, time.perf_counter() - began


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def stats_rows(label: str, side: Side) -> list[Row]:
    if not side.seconds:
        return [Row(f"{label}: lifecycles", f"0 ({len(side.failures)} failed)")]
    s = latency_ms(side.seconds)
    return [
        Row(f"{label}: p50 / p99 / max", f"{s['p50_ms']:.0f} / {s['p99_ms']:.0f} / {s['max_ms']:.0f} ms"),
        Row(f"{label}: first (cold)", ms(side.seconds[0])),
    ]


def steps_row(label: str, side: Side) -> Row:
    means = side.figures()["phases_mean_ms"]
    names = "+".join(name.removesuffix("_access") for name in means)
    return Row(f"{label}: {names} (mean ms)", "+".join(f"{ms:.0f}" for ms in means.values()))


async def run(args: argparse.Namespace) -> int:
    # As the tests' `desk` fixture builds its worker: the SDK's defaults, sticky cache included, unless
    # --workflow-cache says otherwise (0 is what worker.py runs with, REFUND_DESK_WORKFLOW_CACHE's default).
    options: dict[str, Any] = {}
    if args.workflow_cache is not None:
        options["max_cached_workflows"] = args.workflow_cache
    cache = options.get("max_cached_workflows", SDK_DEFAULT_CACHE)
    # Variants keep their own JSON, so that the default run's figures stay where the next run compares.
    name = NAME + ("" if args.workflow_cache is None else f"-cache{args.workflow_cache}")
    name += "-noaccess" if args.no_access else ""
    figures: dict[str, Any] = {
        "lifecycles": args.lifecycles,
        "access": not args.no_access,
        "concurrency": args.concurrency,
        "worker_options": options or {"max_cached_workflows": f"SDK default ({SDK_DEFAULT_CACHE})"},
        "server": "temporal-test-server (time-skipping), one for the run",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    began = time.perf_counter()
    mine, bare = Side(), Side()
    concurrent: dict[str, tuple[Side, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ts-") as workdir:
        ledger = Ledger.connect(f"sqlite+aiosqlite:///{Path(workdir) / 'ledger.db'}")
        await upgrade(ledger.engine)
        try:
            env = await WorkflowEnvironment.start_time_skipping(
                data_converter=encrypting_converter(PayloadKeyring.generate("bench-payload")),
                test_server_existing_path=tool_path("temporal-test-server"),
                runtime=QUIET_RUNTIME,
            )
            async with env:
                await register_search_attributes(env.client)
                bare_client = await Client.connect(
                    env.client.service_client.config.target_host,
                    namespace=env.client.namespace,
                    runtime=QUIET_RUNTIME,
                )
                keyring = VaultKeyring.generate("bench-vault")
                queue, bare_queue = f"ts-{uuid.uuid4().hex[:8]}", f"ts-bare-{uuid.uuid4().hex[:8]}"
                desk = ServerClockDesk(client=env.client, ledger=ledger, keyring=keyring, task_queue=queue)
                project = Project(desk=desk, ledger=ledger, access=not args.no_access)
                baseline = Baseline(client=bare_client, task_queue=bare_queue)
                bare_worker = Worker(
                    bare_client,
                    task_queue=bare_queue,
                    workflows=[BareLifecycle],
                    activities=[noop],
                    **options,
                )
                async with build_worker(env.client, ledger, keyring, queue, **options), bare_worker:
                    try:
                        async with asyncio.timeout(args.timeout):
                            await sequential(project, baseline, args.lifecycles, mine, bare, figures)
                            if args.concurrency > 1 and not (mine.failures or bare.failures):
                                sides: dict[str, Lifecycles] = {"project": project, "baseline": baseline}
                                for label, lifecycles in sides.items():
                                    concurrent[label] = await in_waves(
                                        lifecycles, args.lifecycles, args.concurrency, env.client
                                    )
                    except TimeoutError:
                        mine.failures.append(f"the run's --timeout ({args.timeout:.0f} s) ran out")
        finally:
            await ledger.close()
    figures["elapsed_s"] = round(time.perf_counter() - began, 1)
    figures["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["project"] = mine.figures()
    figures["baseline"] = bare.figures()
    if concurrent:
        figures["concurrent"] = {
            label: {
                **side.figures(),
                "wall_s": round(wall, 2),
                "per_second": round(len(side.seconds) / wall, 2),
            }
            for label, (side, wall) in concurrent.items()
        }

    p_mean = statistics.fmean(mine.seconds) if mine.seconds else math.nan
    b_mean = statistics.fmean(bare.seconds) if bare.seconds else math.nan
    figures["ratio_mean"] = round(p_mean / b_mean, 2)
    met = at_most(p_mean * 1000, GOAL_MS)
    figures["target"] = {"mean_ms_at_most": GOAL_MS, "mean_ms": round(p_mean * 1000, 1), "met": met}
    rows = [
        Row("lifecycles, one at a time (project + baseline)", f"{len(mine.seconds)} + {len(bare.seconds)}"),
        Row(
            "project: mean wall time per lifecycle",
            ms(p_mean),
            against(f"<= {GOAL_MS:.0f} ms", met),
        ),
        *stats_rows("project", mine),
        steps_row("project", mine),
        Row("baseline: mean wall time per lifecycle", ms(b_mean)),
        *stats_rows("baseline", bare),
        steps_row("baseline", bare),
        Row("project / baseline (mean)", f"{p_mean / b_mean:.2f}x"),
        Row(
            "history events: project / baseline",
            " / ".join(
                str(figures.get(f"{side}_history", {}).get("events", "?")) for side in ("project", "baseline")
            ),
        ),
        Row(
            "workers' max_cached_workflows",
            f"{cache}" + (" (as tests)" if args.workflow_cache is None else ""),
        ),
    ]
    for label, (side, wall) in concurrent.items():
        count = max(len(side.seconds), 1)
        value = f"{ms(wall / count)} ({count / wall:.1f}/s); each {ms(statistics.fmean(side.seconds or [0]))}"
        rows.append(Row(f"{label}: waves of {args.concurrency}, wall per lifecycle", value))
    failed = [*mine.failures, *bare.failures, *(f for side, _ in concurrent.values() for f in side.failures)]
    rows.append(Row("failed lifecycles", str(len(failed)), "0"))
    rows.append(Row("elapsed", f"{figures['elapsed_s']} s"))
    start_load, end_load = figures["load_average_at_start"][0], figures["load_average_at_end"][0]
    rows.append(Row("load average (1 min) at start / end", f"{start_load:.1f} / {end_load:.1f}"))
    report(name, "Time-skipping suite: one whole 5-day defect lifecycle", rows, figures)
    for failure in failed[:5]:
        print(f"failed: {failure}", file=sys.stderr)
    return 0 if not failed else 1


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.time_skipping", description=__doc__.split("\n\n")[0])
    p.add_argument("--lifecycles", type=int, default=200, help="lifecycles of each side (default 200)")
    p.add_argument("--timeout", type=float, default=600, help="seconds for the whole run (default 600)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="above 1: then as many again of each, in waves of this many side by side",
    )
    p.add_argument(
        "--workflow-cache",
        type=int,
        default=None,
        help="the workers' max_cached_workflows (default: the SDK's, as the tests; worker.py runs with 0)",
    )
    p.add_argument("--no-access", action="store_true", help="skip R9/R10's access request and grant")
    args = p.parse_args(argv)
    if args.lifecycles < 2:
        p.error("--lifecycles must be at least 2 (the first is the cold one)")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
