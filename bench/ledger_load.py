"""How many complaints a day one ledger carries: a defect complaint's writes, as its workflow makes them,
replayed against the ledger alone, on SQLite and on a throwaway PostgreSQL cluster.

    .venv/bin/python -m bench.ledger_load [--complaints 2000] [--concurrency 20] [--ledger sqlite,postgresql]

A complaint's lifecycle (bench 1's: filed, reviewed, access asked and granted, the deadline, the remedy
window, the default refund) writes its order, ten transitions (each the projection, an audit event and,
for five of them, a notice in the outbox, in one transaction: `Ledger.record_transition`), one refund
(`Ledger.issue_refund`); meanwhile one dispatcher claims the notices' deliveries fifty at a time and
marks each sent, as `dispatch.Dispatcher` does (`Deliveries.claim`, `.record_sent`). The API's reads
are left out (bench 4 and `bench.targets` measure them). `--concurrency` complaints are written at once,
as a worker's activities would; the figure is complaints per second from the first write to the last
delivery marked sent, and the day's worth at that rate. No Temporal, no worker: this is the ledger's
share alone, to set beside bench 1's lifecycles per second (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.report import Row, report
from ledger.deliveries import Attempt, Deliveries
from ledger.migrate import upgrade_url
from ledger.records import ComplaintTransition, Notification, RefundIssue
from ledger.repository import Ledger
from policy.complaint import ComplaintState
from policy.models import (
    Actor,
    ComplaintEvent,
    ComplaintKind,
    ComplaintStatus,
    Money,
    Order,
    Product,
    ProductKind,
    Role,
)
from policy.settings import PolicySnapshot
from tests.postgres import throwaway_cluster

LIFECYCLE: tuple[tuple[str, ComplaintStatus, bool], ...] = (
    ("filed", ComplaintStatus.UNDER_REVIEW, True),
    ("approved", ComplaintStatus.RECTIFYING, True),
    ("access_requested", ComplaintStatus.AWAITING_ACCESS, True),
    ("access_granted", ComplaintStatus.RECTIFYING, False),
    ("reminder_sent", ComplaintStatus.RECTIFYING, False),
    ("deadline_reached", ComplaintStatus.AWAITING_REMEDY_CHOICE, True),
    ("remedy_default", ComplaintStatus.AWAITING_REMEDY_CHOICE, False),
    ("refund_requested", ComplaintStatus.AWAITING_REMEDY_CHOICE, False),
    ("refunded", ComplaintStatus.REFUNDED, True),
    ("closed", ComplaintStatus.REFUNDED, False),
)
"""Bench 1's lifecycle as the ledger sees it: ten transitions, five of them sending a notice."""

POLICY = PolicySnapshot()
BEGIN = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Options:
    complaints: int = 2_000
    concurrency: int = 20
    ledgers: tuple[str, ...] = ("sqlite", "postgresql")


def _order(n: int) -> Order:
    product = Product(sku="plugin-seo-pro", kind=ProductKind.SOFTWARE, name="SEO Pro plugin")
    return Order(
        order_id=f"load-{n}-{uuid.uuid4().hex[:8]}",
        customer_id=f"cust-{n}",
        product=product,
        price=Money(amount=Decimal("50.00"), currency="EUR"),
        placed_at=BEGIN,
    )


async def one_complaint(ledger: Ledger, n: int) -> None:
    """Write one complaint's lifecycle as its workflow's activities and the dispatcher would."""
    order = _order(n)
    await ledger.record_order(order)
    complaint_id = f"{order.order_id}.major_defect"
    customer = Actor(role=Role.CUSTOMER, id=order.customer_id)
    notices: list[str] = []
    for seq, (event_type, status, notifies) in enumerate(LIFECYCLE, start=1):
        at = BEGIN + timedelta(minutes=seq)
        state = ComplaintState(
            complaint_id=complaint_id,
            kind=ComplaintKind.MAJOR_DEFECT,
            order=order,
            description="The licensing module crashes on every request since the last update.",
            filed_by=customer,
            policy=POLICY,
            status=status,
            created_at=BEGIN,
            deadline=BEGIN + POLICY.rectify_window,
        )
        event = ComplaintEvent(seq=seq, at=at, actor="system:refund-desk", type=event_type, detail={})
        sent = []
        if notifies:
            key = f"{complaint_id}:{seq}:{event_type}"
            sent.append(
                Notification(
                    dedupe_key=key, recipient="customer", template=event_type, complaint_id=complaint_id
                )
            )
            notices.append(key)
        transition = ComplaintTransition(state=state, event=event, notifications=sent)
        await ledger.record_transition(f"complaint.{complaint_id}", "run-1", transition)
    await ledger.issue_refund(
        RefundIssue(
            source_kind="complaint",
            source_id=complaint_id,
            customer_id=order.customer_id,
            order_id=order.order_id,
            amount=order.price,
            actor="system:refund-desk",
            at=BEGIN + timedelta(days=8),
        )
    )


async def dispatch(deliveries: Deliveries, expected: int) -> None:
    """Claim and mark sent every delivery until `expected` have been, as one dispatcher would."""
    sent = 0
    while sent < expected:
        now = datetime.now(UTC)
        claimed = await deliveries.claim("bench", now=now, lease=timedelta(minutes=1), limit=50)
        for delivery in claimed:
            sent += await deliveries.record_sent(delivery, Attempt(latency_ms=1, status_code=250), now)
        if not claimed:
            await asyncio.sleep(0.01)


async def measure(url: str, options: Options) -> dict[str, float]:
    """Complaints per second on the ledger at `url`, `options.concurrency` at once."""
    await upgrade_url(url)
    ledger = Ledger.connect(url)
    notices = sum(notifies for _, _, notifies in LIFECYCLE)
    try:
        gate = asyncio.Semaphore(options.concurrency)

        async def bounded(n: int) -> None:
            async with gate:
                await one_complaint(ledger, n)

        deliveries = Deliveries(ledger.engine)
        warm = [bounded(-n - 1) for n in range(options.concurrency)]
        await asyncio.gather(*warm, dispatch(deliveries, options.concurrency * notices))  # untimed
        began = time.perf_counter()
        writes = [bounded(n) for n in range(options.complaints)]
        await asyncio.gather(*writes, dispatch(deliveries, options.complaints * notices))
        seconds = time.perf_counter() - began
    finally:
        await ledger.close()
    per_second = options.complaints / seconds
    return {"seconds": round(seconds, 1), "per_second": round(per_second, 1), "per_day": per_second * 86_400}


async def bench(options: Options) -> int:
    figures: dict[str, dict[str, float]] = {}
    if "sqlite" in options.ledgers:
        with tempfile.TemporaryDirectory() as folder:
            figures["sqlite"] = await measure(f"sqlite+aiosqlite:///{Path(folder) / 'ledger.db'}", options)
    if "postgresql" in options.ledgers:
        with throwaway_cluster() as admin_url:
            figures["postgresql"] = await measure(admin_url, options)
    rows = [
        Row(
            f"{kind}: {options.complaints} lifecycles' writes, {options.concurrency} at once",
            f"{f['per_second']} complaints/s ({f['seconds']} s): {f['per_day'] / 1e6:.1f} million a day",
        )
        for kind, f in figures.items()
    ]
    title = "Ledger load: a defect complaint's writes, without Temporal"
    report(
        "ledger_load", title, rows, {"options": vars(options) | {"ledgers": list(options.ledgers)}, **figures}
    )
    return 0


def parse(argv: list[str] | None) -> Options:
    d = Options()
    p = argparse.ArgumentParser(prog="python -m bench.ledger_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--complaints", type=int, default=d.complaints)
    p.add_argument("--concurrency", type=int, default=d.concurrency)
    p.add_argument(
        "--ledger", default=",".join(d.ledgers), help="sqlite, postgresql or both, comma-separated"
    )
    a = p.parse_args(argv)
    return Options(a.complaints, a.concurrency, tuple(k.strip() for k in a.ledger.split(",") if k.strip()))


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
