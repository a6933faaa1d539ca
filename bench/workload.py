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
from policy.complaint import Review, ServerCredentials
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
    """The bare baseline's plan for a lifecycle like `history`'s: the activities it scheduled at the start,
    within each update, and after each timer that fired (with that timer's duration)."""
    plan = BarePlan(at_start=0)
    durations: dict[int, float] = {}
    segment = "start"
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            durations[event.event_id] = (
                event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
            )
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            seconds = durations[event.timer_fired_event_attributes.started_event_id]
            plan.timers.append(Timer(seconds=seconds, then=0))
            segment = "timer"
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            plan.per_update.append(0)
            segment = "update"
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if segment == "start":
                plan.at_start += 1
            elif segment == "update":
                plan.per_update[-1] += 1
            else:
                plan.timers[-1].then += 1
    return plan


def activities_in(plan: BarePlan) -> int:
    return plan.at_start + sum(plan.per_update) + sum(t.then for t in plan.timers)
