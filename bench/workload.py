"""What the benchmarks file and drive: software orders, the people acting on them, and the bare baseline's
plan counted off a real complaint's history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from bench.baseline import BarePlan, Timer
from policy.complaint import Review
from policy.credentials import ServerCredentials
from policy.models import Actor, Money, Order, Product, ProductKind, ReviewDecision, Role

T = TypeVar("T")

BACKEND = Actor(role=Role.BACKEND, id="bench-shop")
SUPPORT = Actor(role=Role.SUPPORT, id="bench-support")
DESCRIPTION = "The licensing module crashes on every request since the last update; logs are attached."
APPROVE = Review(actor=SUPPORT, decision=ReviewDecision.APPROVE, note="benchmark")
CREDENTIALS = ServerCredentials(host="bench.example.net", username="deploy", secret=SecretStr("bench-secret"))
PRODUCT = Product(sku="plugin-seo-pro", kind=ProductKind.SOFTWARE, name="SEO Pro plugin")


def order(run: str, index: int) -> Order:
    """Order `index` of a run: a software product (so a major-defect complaint may be filed on it), one
    customer per ten orders."""
    return Order(
        order_id=f"{run}-{index:06d}",
        customer_id=f"{run}-c{index // 10:05d}",
        product=PRODUCT,
        price=Money(amount=Decimal("49.90"), currency="EUR"),
        placed_at=datetime.now(UTC) - timedelta(hours=1),
    )


def customer(o: Order) -> Actor:
    return Actor(role=Role.CUSTOMER, id=o.customer_id)


async def bounded(concurrency: int, jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run `jobs` with at most `concurrency` in flight; results in the jobs' order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def timed(call: Awaitable[T], into: list[float]) -> T:
    """Await `call`, appending its wall time (seconds) to `into`."""
    began = time.perf_counter()
    result = await call
    into.append(time.perf_counter() - began)
    return result


def plan_of(history: WorkflowHistory) -> BarePlan:
    """The bare plan a project history asks for: activities scheduled before the first update, within
    each update (between its acceptance and completion), and after each timer that fired (until the next
    one fires), with the fired timers' durations as they were started. Timers started and then cancelled
    (a wait cut short by an update) are not in it: the bare workflow sleeps only the ones that ran out.
    An update the first workflow task accepts came with the start (update-with-start, as the project
    files): the bare lifecycle sends its first update with its start too."""
    started: dict[str, float] = {}
    plan = BarePlan(at_start=0)
    in_update = False
    tasks = 0
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks += 1
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            attributes = event.timer_started_event_attributes
            started[attributes.timer_id] = attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            timer_id = event.timer_fired_event_attributes.timer_id
            plan.timers.append(Timer(seconds=started[timer_id], then=0))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            if not plan.per_update and tasks == 1:
                plan.update_with_start = True
            plan.per_update.append(0)
            in_update = True
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            in_update = False
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if in_update:
                plan.per_update[-1] += 1
            elif plan.timers:
                plan.timers[-1].then += 1
            else:
                plan.at_start += 1
    return plan


def activities_in(plan: BarePlan) -> int:
    return plan.at_start + sum(plan.per_update) + sum(t.then for t in plan.timers)
